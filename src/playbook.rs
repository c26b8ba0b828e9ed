//! Playbooks: the ordered plays of a deploy. (Being written: see the foundation issue.)

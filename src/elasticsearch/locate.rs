//! Finding an Elasticsearch node to talk to: the first of the given jails that
//! answers `GET /` through a forward over its host's connection. `GET /`
//! answers even without an elected master, so it only picks the node to ask.
//! Deploy, status and migrate-node all find their node here.

use std::future::Future;
use std::net::SocketAddr;

use super::{Client, RootInfo};
use crate::inventory::Jail;
use crate::remote::Remote;

/// The node that answered.
#[derive(Debug, Clone)]
pub struct Located {
    pub client: Client,
    /// What it said to `GET /` (its node name, cluster, version).
    pub root: RootInfo,
    /// The inventory name of its jail.
    pub jail: String,
}

/// No candidate answered; each one's reason, in the order they were tried.
#[derive(Debug, thiserror::Error)]
#[error("no Elasticsearch node answers: {}", self.reasons())]
pub struct NoNodeAnswers {
    /// `(jail, why)` for every candidate tried.
    pub tried: Vec<(String, String)>,
}

impl NoNodeAnswers {
    /// `jail: why; jail: why`, or a sentence when there was no candidate at all.
    pub fn reasons(&self) -> String {
        if self.tried.is_empty() {
            return "no host with an Elasticsearch jail could be reached".to_owned();
        }
        self.tried
            .iter()
            .map(|(jail, why)| format!("{jail}: {why}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The first of `candidates` - a jail and the way to reach it - that answers on
/// `port`. `forward` makes the jail's `ip:port` reachable from here through the
/// candidate's connection and returns the local address (a caller that keeps
/// its forwards open across rounds passes its cache here).
pub async fn first_answering<'j, Via, Forward, Opened>(
    candidates: impl IntoIterator<Item = (&'j Jail, Via)>,
    port: u16,
    forward: Forward,
) -> Result<Located, NoNodeAnswers>
where
    Forward: Fn(Via, SocketAddr) -> Opened,
    Opened: Future<Output = Result<SocketAddr, String>>,
{
    let mut tried = Vec::new();
    for (jail, via) in candidates {
        let target = SocketAddr::new(jail.ip.into(), port);
        let attempt = async {
            let local = forward(via, target).await?;
            let client = Client::new(format!("http://{local}")).map_err(|e| e.to_string())?;
            let root = client.root().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(Located {
                client,
                root,
                jail: jail.name.to_string(),
            })
        };
        match attempt.await {
            Ok(located) => return Ok(located),
            Err(why) => tried.push((jail.name.to_string(), why)),
        }
    }
    Err(NoNodeAnswers { tried })
}

/// [`first_answering`] through a new forward on each candidate's [`Remote`].
pub async fn through_remotes<'r, R: Remote + 'r>(
    candidates: impl IntoIterator<Item = (&'r Jail, &'r R)>,
    port: u16,
) -> Result<Located, NoNodeAnswers> {
    first_answering(candidates, port, |remote: &R, target| async move {
        remote.tunnel(target).await.map_err(|e| e.to_string())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Role;
    use crate::remote::scripted::{ScriptedRemote, http_once};

    fn es_jails() -> Vec<Jail> {
        crate::testing::lab()
            .jails_with_role(Role::Elasticsearch)
            .map(|(_, jail)| jail.clone())
            .take(3)
            .collect()
    }

    #[tokio::test]
    async fn the_first_node_that_answers_is_used_and_the_others_say_why_not() {
        let jails = es_jails();
        let root =
            r#"{"name":"es3","cluster_name":"c","cluster_uuid":"u","version":{"number":"8.15.0"}}"#;
        let answering = http_once(200, root).await;
        // No forward at all; a forward to a port where nothing listens; one that answers.
        let unreachable = ScriptedRemote::new("h1");
        let refusing = ScriptedRemote::new("h2").with_tunnel(refused_port().await);
        let good = ScriptedRemote::new("h3").with_tunnel(answering);
        let candidates = [
            (&jails[0], &unreachable),
            (&jails[1], &refusing),
            (&jails[2], &good),
        ];
        let located = through_remotes(candidates, 9200).await.unwrap();
        assert_eq!(located.root.name, "es3");
        assert_eq!(located.jail, jails[2].name.as_str());

        let err = through_remotes(candidates.into_iter().take(2), 9200)
            .await
            .unwrap_err();
        assert_eq!(err.tried.len(), 2);
        assert_eq!(err.tried[0].0, jails[0].name.as_str());
        assert!(err.tried[0].1.contains("no tunnel"), "{err}");
        assert_eq!(err.tried[1].0, jails[1].name.as_str());
        let none = through_remotes(std::iter::empty::<(&Jail, &ScriptedRemote)>(), 9200)
            .await
            .unwrap_err();
        assert_eq!(
            none.to_string(),
            "no Elasticsearch node answers: no host with an Elasticsearch jail could be reached"
        );
    }

    /// A loopback port nothing listens on (bound, then closed).
    async fn refused_port() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }
}

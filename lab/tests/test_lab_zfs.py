"""ZFS is real: zfs-fuse, with zfs-fuse's limits."""
from conftest import paths, ssh


def test_create_list_snapshot_destroy_a_dataset():
    ssh("lab2", f"zfs create -p -o mountpoint={paths.MNT}/lab2 lab2/jails", check=True)
    try:
        ssh("lab2", "zfs create -o compression=on lab2/jails/zt && echo data > "
                    f"{paths.MNT}/lab2/zt/file && zfs snapshot lab2/jails/zt@s1", check=True)
        out = ssh("lab2", "zfs list -H -o name -t all -r lab2/jails/zt; "
                          "zfs get -H -o value compression lab2/jails/zt", check=True).stdout.split()
        assert out == ["lab2/jails/zt", "lab2/jails/zt@s1", "on"]
        assert ssh("lab2", f"cat {paths.MNT}/lab2/zt/file", check=True).stdout == "data\n"
    finally:
        ssh("lab2", "zfs destroy -r lab2/jails/zt")


def test_lz4_is_rejected_like_zfs_fuse_does():
    result = ssh("lab2", "zfs create -o compression=lz4 lab2/lz4test")
    assert result.returncode != 0
    assert "compression" in result.stderr
    assert ssh("lab2", "zfs list lab2/lz4test").returncode != 0


def test_zfs_list_has_no_p_flag():
    assert ssh("lab2", "zfs list -p").returncode != 0

#!/usr/bin/env python3
"""Writes an OCI image layout from two prepared root directories, without a container engine.

Called by hack/image.sh (which prepares the roots); standard library only. Output:

  OUT/oci/                 an OCI image layout (oci-layout, index.json, blobs/sha256/...):
                           `skopeo copy oci:OUT/oci:VERSION docker://...` pushes it
  OUT/tfjob-operator.tar   the same layout plus Docker's manifest.json in one tar:
                           `docker load -i` and `podman load -i` read it

Layers are deterministic: entries sorted, owner root (0:0) unless the file belongs to the
nonroot user's home, every mtime the commit's time, gzip without a timestamp. The same commit
and the same packages give the same digests.
"""

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import sys
import tarfile

MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
NONROOT = 65532


def layer_tar(root, epoch):
    """The root as an uncompressed tar (bytes), entries sorted, hard links kept."""
    buffer = io.BytesIO()
    seen_inodes = {}
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        paths = []
        for directory, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(dirs + files):
                paths.append(os.path.join(directory, name))
        for path in sorted(paths, key=lambda p: os.path.relpath(p, root)):
            name = os.path.relpath(path, root)
            info = os.lstat(path)
            entry = tarfile.TarInfo(name)
            entry.mtime = epoch
            entry.mode = stat.S_IMODE(info.st_mode)
            owned = name == "home/nonroot" or name.startswith("home/nonroot/")
            entry.uid = entry.gid = NONROOT if owned else 0
            entry.uname = entry.gname = "nonroot" if owned else "root"
            if stat.S_ISLNK(info.st_mode):
                entry.type = tarfile.SYMTYPE
                entry.linkname = os.readlink(path)
                tar.addfile(entry)
            elif stat.S_ISDIR(info.st_mode):
                entry.type = tarfile.DIRTYPE
                tar.addfile(entry)
            elif stat.S_ISREG(info.st_mode):
                key = (info.st_dev, info.st_ino)
                if info.st_nlink > 1 and key in seen_inodes:
                    entry.type = tarfile.LNKTYPE
                    entry.linkname = seen_inodes[key]
                    tar.addfile(entry)
                    continue
                seen_inodes[key] = name
                entry.size = info.st_size
                with open(path, "rb") as content:
                    tar.addfile(entry, content)
            else:
                raise SystemExit(f"oci.py: {path} is neither a file, a directory nor a symlink")
    return buffer.getvalue()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_blob(out, data):
    digest = sha256(data)
    path = os.path.join(out, "blobs", "sha256", digest.split(":", 1)[1])
    with open(path, "wb") as blob:
        blob.write(data)
    return digest


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("base", "app", "out", "name", "version", "revision", "source", "licenses"):
        parser.add_argument(f"--{flag}", required=True)
    parser.add_argument("--epoch", type=int, required=True)
    parser.add_argument("--packages", default="", help="pkg=version,... (for the history)")
    args = parser.parse_args()

    layout = os.path.join(args.out, "oci")
    shutil.rmtree(layout, ignore_errors=True)
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    created = datetime.datetime.fromtimestamp(args.epoch, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )

    layers, diff_ids = [], []
    for root in (args.base, args.app):
        raw = layer_tar(root, args.epoch)
        compressed = gzip.compress(raw, compresslevel=9, mtime=0)
        diff_ids.append(sha256(raw))
        layers.append(
            {"mediaType": MEDIA_LAYER, "digest": write_blob(layout, compressed), "size": len(compressed)}
        )

    labels = {
        "org.opencontainers.image.title": args.name,
        "org.opencontainers.image.description": "Runs Kubeflow TFJobs (kubeflow.org/v1): a drop-in for training-operator's TFJob controller",
        "org.opencontainers.image.source": args.source,
        "org.opencontainers.image.url": args.source,
        "org.opencontainers.image.version": args.version,
        "org.opencontainers.image.revision": args.revision,
        "org.opencontainers.image.licenses": args.licenses,
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.base.name": "debian:bookworm packages " + args.packages.rstrip(","),
    }
    config = {
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": f"{NONROOT}:{NONROOT}",
            "Entrypoint": ["/usr/local/bin/tfjob-operator"],
            "Env": [
                "PATH=/usr/local/bin:/usr/bin:/bin",
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
                "HOME=/home/nonroot",
            ],
            "WorkingDir": "/home/nonroot",
            "ExposedPorts": {"8080/tcp": {}, "8081/tcp": {}, "9443/tcp": {}},
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": created, "created_by": "hack/image.sh: Debian packages " + args.packages.rstrip(",")},
            {"created": created, "created_by": "hack/image.sh: tfjob-operator release binary"},
        ],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_digest = write_blob(layout, config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": layers,
        "annotations": {k: v for k, v in labels.items() if k != "org.opencontainers.image.base.name"},
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    manifest_digest = write_blob(layout, manifest_bytes)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": MEDIA_MANIFEST,
                "digest": manifest_digest,
                "size": len(manifest_bytes),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    "org.opencontainers.image.ref.name": args.version,
                    "io.containerd.image.name": f"{args.name}:{args.version}",
                },
            }
        ],
    }
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f, sort_keys=True, separators=(",", ":"))
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)

    # Docker's archive format: the OCI layout plus manifest.json naming config and layers.
    docker_manifest = [
        {
            "Config": "blobs/sha256/" + config_digest.split(":", 1)[1],
            "RepoTags": [f"{args.name}:{args.version}"],
            "Layers": ["blobs/sha256/" + layer["digest"].split(":", 1)[1] for layer in layers],
        }
    ]
    with open(os.path.join(layout, "manifest.json"), "w") as f:
        json.dump(docker_manifest, f, separators=(",", ":"))
    archive = os.path.join(args.out, f"{args.name}.tar")
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(os.listdir(layout)):
            tar.add(os.path.join(layout, name), arcname=name, filter=lambda e: reset(e, args.epoch))
    os.remove(os.path.join(layout, "manifest.json"))  # not part of an OCI layout

    size = sum(layer["size"] for layer in layers)
    print(
        f"[image] {args.name}:{args.version} manifest {manifest_digest}, "
        f"{size / 1048576:.1f} MiB compressed ({layers[0]['size'] / 1048576:.1f} MiB runtime, "
        f"{layers[1]['size'] / 1048576:.1f} MiB binary)",
        file=sys.stderr,
    )


def reset(entry, epoch):
    entry.mtime, entry.uid, entry.gid, entry.uname, entry.gname = epoch, 0, 0, "root", "root"
    return entry


if __name__ == "__main__":
    main()

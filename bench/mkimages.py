#!/usr/bin/python3
"""Lays out a repository of manifest revisions and tags as the registry does (stdlib only).

    mkimages.py <storage-root> <revisions> <tags>

Writes the repository `bench/images` of another store: one config blob, <revisions> small OCI
image manifests naming it (`blobs/sha256/<xx>/<hex>/data` and
`_manifests/revisions/sha256/<hex>/link`), and <tags> tags `t0000`, `t0001`, ... on the first
manifests (`_manifests/tags/<tag>/current/link` and `index/sha256/<hex>/link`), each link holding
exactly `sha256:<hex>`. The same arguments always make the same store.
"""
import hashlib
import os
import sys


def put_blob(v2: str, content: bytes) -> str:
    hexdigest = hashlib.sha256(content).hexdigest()
    directory = os.path.join(v2, "blobs", "sha256", hexdigest[:2], hexdigest)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "data"), "wb") as f:
        f.write(content)
    return hexdigest


def put_link(path: str, hexdigest: str) -> None:
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "link"), "wb") as f:
        f.write(b"sha256:" + hexdigest.encode())


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    root, revisions, tags = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    v2 = os.path.join(root, "docker", "registry", "v2")
    repository = os.path.join(v2, "repositories", "bench", "images")
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    config_hex = put_blob(v2, config)
    put_link(os.path.join(repository, "_layers", "sha256", config_hex), config_hex)
    digests = []
    for n in range(revisions):
        manifest = (
            '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
            f'"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":{len(config)},"digest":"sha256:{config_hex}"}},'
            f'"layers":[],"annotations":{{"n":"{n}"}}}}'
        ).encode()
        hexdigest = put_blob(v2, manifest)
        put_link(os.path.join(repository, "_manifests", "revisions", "sha256", hexdigest), hexdigest)
        digests.append(hexdigest)
    for n in range(tags):
        tag = os.path.join(repository, "_manifests", "tags", f"t{n:04d}")
        put_link(os.path.join(tag, "index", "sha256", digests[n % len(digests)]), digests[n % len(digests)])
        put_link(os.path.join(tag, "current"), digests[n % len(digests)])
    return 0


if __name__ == "__main__":
    sys.exit(main())

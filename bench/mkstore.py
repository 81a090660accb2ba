#!/usr/bin/python3
"""Lays out the small blobs of the benchmark store as the registry does (stdlib only).

    mkstore.py <storage-root> <repositories> <blobs-per-repository> <names-directory>

Writes <repositories> repositories `bench/many-00`, `bench/many-01`, ... each linking
<blobs-per-repository> distinct small blobs (64 B to 4 KiB of seeded bytes, so every run makes the
same store): `docker/registry/v2/blobs/sha256/<xx>/<hex>/data` and
`docker/registry/v2/repositories/<name>/_layers/sha256/<hex>/link` holding exactly `sha256:<hex>`
(no newline). Into <names-directory> it writes, for the first repository, `blobs.names`
(`sha256:<hex>`: the names under a mount's `repo/bench/many-00/blobs/`), `layers.names` (`<hex>`:
the names under its `_layers/sha256/` on disk) and `data.paths` (`blobs/sha256/<xx>/<hex>/data`,
relative to `docker/registry/v2`); for every repository, `all-blobs.names`
(`bench/many-NN/blobs/sha256:<hex>`, relative to a mount's `repo/`) and `all-layers.names`
(`bench/many-NN/_layers/sha256/<hex>`, relative to `docker/registry/v2/repositories`).
"""
import hashlib
import os
import random
import sys


def main() -> int:
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    root, repositories, per_repository, names_dir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    v2 = os.path.join(root, "docker", "registry", "v2")
    blobs = os.path.join(v2, "blobs", "sha256")
    rng = random.Random(20240605)
    pool = rng.randbytes(8192)
    made_prefixes = set()
    os.makedirs(names_dir, exist_ok=True)
    all_blobs = open(os.path.join(names_dir, "all-blobs.names"), "w")
    all_layers = open(os.path.join(names_dir, "all-layers.names"), "w")
    for r in range(repositories):
        name = f"bench/many-{r:02d}"
        layers = os.path.join(v2, "repositories", name, "_layers", "sha256")
        os.makedirs(layers, exist_ok=True)
        hexes = []
        for i in range(per_repository):
            n = r * per_repository + i
            size = 64 + rng.randrange(4033)
            start = rng.randrange(len(pool) - size)
            content = b"blobfs bench %d\n" % n + pool[start:start + size]
            hexdigest = hashlib.sha256(content).hexdigest()
            prefix = os.path.join(blobs, hexdigest[:2])
            if prefix not in made_prefixes:
                os.makedirs(prefix, exist_ok=True)
                made_prefixes.add(prefix)
            blob_dir = os.path.join(prefix, hexdigest)
            os.mkdir(blob_dir)
            with open(os.path.join(blob_dir, "data"), "wb") as f:
                f.write(content)
            link_dir = os.path.join(layers, hexdigest)
            os.mkdir(link_dir)
            with open(os.path.join(link_dir, "link"), "wb") as f:
                f.write(b"sha256:" + hexdigest.encode())
            hexes.append(hexdigest)
            all_blobs.write(f"{name}/blobs/sha256:{hexdigest}\n")
            all_layers.write(f"{name}/_layers/sha256/{hexdigest}\n")
        if r == 0:
            with open(os.path.join(names_dir, "blobs.names"), "w") as f:
                f.writelines(f"sha256:{h}\n" for h in hexes)
            with open(os.path.join(names_dir, "layers.names"), "w") as f:
                f.writelines(f"{h}\n" for h in hexes)
            with open(os.path.join(names_dir, "data.paths"), "w") as f:
                f.writelines(f"blobs/sha256/{h[:2]}/{h}/data\n" for h in hexes)
    all_blobs.close()
    all_layers.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

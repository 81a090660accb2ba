#!/usr/bin/python3
"""The report of `make bench`: medians, ratios, targets, a chart (stdlib + matplotlib).

    report.py <results.tsv> <meta.env> [--s3 <dir>] [--doc docs/benchmarks.md --chart docs/benchmarks.png]
    report.py --s3-only <dir>

Prints the results section (Markdown) and, with --doc, replaces the part of the doc between
`<!-- bench:results:begin -->` and `<!-- bench:results:end -->` with it (appending both markers
when they are missing) and draws the chart the doc embeds. `--s3 <dir>` adds the S3 section from
the files bench/s3.sh wrote there (s3-results.tsv, s3-meta.env; or s3-failed.txt, saying why it
has none) and its issue-14 rows to the targets; `--s3-only` prints that section alone.
"""
import argparse
import os
import statistics
import sys
from collections import defaultdict

BEGIN = "<!-- bench:results:begin -->"
END = "<!-- bench:results:end -->"

NAMES = {
    "native": "native",
    "blobfs": "blobfs",
    "blobfs-noverify": "blobfs --no-verify",
    "blobfs-remembered": "blobfs --remember-verified",
    "blobfs-ptoff": "blobfs --passthrough off",
    "blobfs-noverify-ptoff": "blobfs --no-verify --passthrough off",
    "blobfs-metrics": "blobfs --metrics-address",
    "bindfs": "bindfs",
    "rclone": "rclone mount",
    "blobfs-smallcache": "blobfs, cache smaller than the large blob",
    "rclone-off": "rclone mount --vfs-cache-mode off",
    "rclone-full": "rclone mount --vfs-cache-mode full",
    "s3fs": "s3fs",
    "curl": "curl GET (one stream)",
    "sha256sum": "sha256sum",
    "openssl": "openssl dgst -sha256",
}
COLOURS = {
    "native": "#4d4d4d",
    "blobfs": "#1f77b4",
    "blobfs-noverify": "#9ecae1",
    "blobfs-remembered": "#6a51a3",
    "blobfs-ptoff": "#08519c",
    "blobfs-noverify-ptoff": "#c6dbef",
    "blobfs-metrics": "#17becf",
    "bindfs": "#ff7f0e",
    "rclone": "#2ca02c",
    "sha256sum": "#4d4d4d",
    "openssl": "#bbbbbb",
}


def load(results_path, meta_path):
    rows = defaultdict(list)  # (figure, contender) -> [row dicts]
    with open(results_path) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            row = dict(zip(header, line.rstrip("\n").split("\t")))
            rows[(row["figure"], row["contender"])].append(row)
    meta = {}
    with open(meta_path) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            meta[key] = value
    return rows, meta


class Results:
    def __init__(self, rows, meta):
        self.rows = rows
        self.meta = meta
        self.large_bytes = int(meta["large_mib"]) * 1024 * 1024

    def values(self, figure, contender, field="seconds"):
        return [float(r[field]) for r in self.rows.get((figure, contender), []) if r.get(field, "") != ""]

    def median(self, figure, contender, field="seconds"):
        values = self.values(figure, contender, field)
        return statistics.median(values) if values else None

    def runs(self, figure, contender):
        return len(self.values(figure, contender))


def fmt_seconds(s):
    if s is None:
        return "–"
    if s < 0.01:
        return f"{s * 1000:.2f} ms"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    return f"{s:.2f} s"


def fmt_rate(bytes_, seconds):
    rate = bytes_ / seconds
    return f"{rate / 1e9:.2f} GB/s" if rate >= 1e9 else f"{rate / 1e6:.0f} MB/s"


def ratio(other, mine):
    """Speed ratio: the other's time over blobfs's time; > 1 means blobfs is faster."""
    if other is None or mine is None or mine == 0:
        return "–"
    return f"{other / mine:.2f}×"


# (figure, label, caches, kind) where kind says how to show a time: "bytes" (throughput of the large
# blob), "ops:<count key>" (time per operation), or "time".
def figure_table(res):
    m = res.meta
    n_rand = int(m["random_reads"])
    n_repo = int(m["blobs_per_repo"])
    n_all = int(m["total_blobs"])
    return [
        ("1a", f"1a sequential read of the {m['large_mib']} MiB blob, 1 MiB blocks: first read",
         "data file in host page cache; fresh mount", ("bytes", res.large_bytes)),
        ("1b", "1b the same, second read", "host page cache; mount's own cache kept (same mount)",
         ("bytes", res.large_bytes)),
        ("1c", "1c the same, cold", "fresh mount, then `echo 3 > /proc/sys/vm/drop_caches`",
         ("bytes", res.large_bytes)),
        ("2a", f"2a {n_rand:,} random 4 KiB preads (seeded offsets): first pass",
         "data file in host page cache; fresh mount", ("ops", n_rand)),
        ("2b", "2b the same offsets again", "warm: same mount", ("ops", n_rand)),
        ("3a", f"3a stat(2) of each of {n_repo:,} blobs of one repository: first pass",
         "host dentry/inode caches warm; fresh mount", ("ops", n_repo)),
        ("3b", "3b the same, second pass", "same mount", ("ops", n_repo)),
        ("3g", "3g open(2) + close(2) of each of them", "same mount, names held", ("ops", n_repo)),
        ("3c", f"3c `ls -l` of that {n_repo:,}-blob listing: first", "fresh mount", ("time", None)),
        ("3d", "3d `ls -l` again", "same mount", ("time", None)),
        ("3e", f"3e `find | wc -l` over all {n_all:,} blobs", "host caches warm; fresh mount", ("time", None)),
        ("3f", f"3f stat(2) of each of all {n_all:,} blobs (one run)", "host caches warm; fresh mount",
         ("ops", n_all)),
        ("7a", f"7a `ls -l` of a repository's {int(m.get('image_revisions', 0)):,} manifests (native: `_manifests/revisions/sha256`)",
         "fresh mount", ("time", None)),
        ("7b", f"7b `ls -l` of its {int(m.get('image_tags', 0)):,} tags (native: `_manifests/tags`)", "fresh mount", ("time", None)),
        ("7c", "7c `cat` of its OCI view's `index.json` (`--oci`; generated at open)", "same mount as 7b", ("time", None)),
        ("4", f"4 write: `cp` of a {m['large_mib']} MiB file into `blobs/sha256:<hex>` of a read-write mount "
         "(verified and committed at close); native: `cp` + `sha256sum` of the copy",
         "source in host page cache; `sync` before each run; fresh mount", ("bytes", res.large_bytes)),
    ]


def cell(res, figure, contender, kind):
    s = res.median(figure, contender)
    if s is None:
        return "–"
    text = fmt_seconds(s)
    if figure == "4" and contender == "native":
        text = "`cp` + `sha256sum`: " + text
    what, amount = kind
    if what == "bytes":
        text += f" ({fmt_rate(amount, s)})"
    elif what == "ops":
        text += f" ({s / amount * 1e6:.1f} µs/op)"
    return text


def main_table(res):
    lines = [
        "| figure | caches | runs | native | bindfs | rclone mount | blobfs | blobfs ÷ native | blobfs ÷ bindfs | blobfs ÷ rclone |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for figure, label, caches, kind in figure_table(res):
        if figure == "4" and not res.runs("4", "blobfs"):
            continue
        # Verification only changes a blob's first read in a mount: --no-verify rows for those.
        first_reads = figure in ("1a", "1c", "2a")
        variants = ["blobfs"] + [v for v in ("blobfs-noverify", "blobfs-remembered") if first_reads and res.runs(figure, v)]
        # Passthrough (issue 13) changes every read figure: the same with it off, side by side.
        variants += [v for v in ("blobfs-ptoff", "blobfs-noverify-ptoff")
                     if figure[0] in "12" and res.runs(figure, v) and (first_reads or v == "blobfs-ptoff")]
        variants += [v for v in ("blobfs-metrics",) if res.runs(figure, v)]
        for variant in variants:
            mine = res.median(figure, variant)
            name = {
                "blobfs": label,
                "blobfs-noverify": f"{figure} … with `blobfs mount --no-verify`",
                "blobfs-remembered": f"{figure} … with `blobfs mount --remember-verified` (verified by an earlier mount)",
                "blobfs-ptoff": f"{figure} … with `blobfs mount --passthrough off`",
                "blobfs-noverify-ptoff": f"{figure} … with `blobfs mount --no-verify --passthrough off`",
                "blobfs-metrics": f"{figure} … with `blobfs mount --metrics-address` (Prometheus metrics on)",
            }[variant]
            runs = max(res.runs(figure, c) for c in ("native", "bindfs", "rclone", variant))
            if figure == "3e":
                counts = {c: res.median("3e-entries", c, "value") for c in ("native", "blobfs", "bindfs", "rclone")}
                caches += f"; entries listed: native {counts['native']:,.0f}, blobfs {counts['blobfs']:,.0f}"
            if figure in ("3e", "3f"):
                runs = " / ".join(f"{res.runs(figure, c)}" for c in ("native", "bindfs", "rclone", variant))
            lines.append(
                f"| {name} | {caches} | {runs} | {cell(res, figure, 'native', kind)} | {cell(res, figure, 'bindfs', kind)} "
                f"| {cell(res, figure, 'rclone', kind)} | **{cell(res, figure, variant, kind)}** "
                f"| {ratio(res.median(figure, 'native'), mine)} | {ratio(res.median(figure, 'bindfs'), mine)} "
                f"| {ratio(res.median(figure, 'rclone'), mine)} |")
    skipped = res.rows.get(("4", "skipped"))
    if skipped:
        lines.append(
            f"| 4 write: `cp` of a 1 GiB file into `blobs/sha256:<hex>`, verified and committed | — | — | "
            f"not measured: {skipped[0]['value']} | | | | | | |")
    return "\n".join(lines)


def verify_table(res):
    lines = [
        "| figure | runs | blobfs verify | sha256sum | openssl dgst -sha256 | blobfs verify ÷ sha256sum |",
        "|---|---|---|---|---|---|",
    ]
    for figure, label, amount in (
        ("6a", f"6a the {res.meta['large_mib']} MiB blob (a store holding only it), in host page cache", res.large_bytes),
        ("6b", f"6b the {int(res.meta['blobs_per_repo']):,}-blob repository (`--repository`; sha256sum of its data files)", None),
    ):
        def show(c):
            s = res.median(figure, c)
            if s is None:
                return "–"
            return fmt_seconds(s) + (f" ({fmt_rate(amount, s)})" if amount else "")
        lines.append(
            f"| {label} | {res.runs(figure, 'blobfs')} | **{show('blobfs')}** | {show('sha256sum')} | {show('openssl')} "
            f"| {ratio(res.median(figure, 'sha256sum'), res.median(figure, 'blobfs'))} |")
    return "\n".join(lines)


def memory_table(res):
    lines = [
        "| daemon | 5a peak RSS after streaming the large blob once (median of runs) | 5b peak RSS after stat of every blob of the store | 5c peak RSS after writing the 1 GiB file (figure 4) |",
        "|---|---|---|---|",
    ]
    mib = lambda v: "–" if v is None else f"{v:.1f} MiB"
    for c in ("blobfs", "blobfs-noverify", "blobfs-ptoff", "bindfs", "rclone"):
        if not res.runs("1a", c):
            continue
        a = res.median("5a", c, "value")
        b = res.median("5b", c, "value")
        w = res.median("5c", c, "value") if c == "blobfs" else None
        lines.append(f"| {NAMES[c]} | {mib(a)} | {mib(b)} | {mib(w)} |")
    return "\n".join(lines)


def cpu_table(res):
    lines = [
        "| figure | blobfs wall | blobfs daemon CPU (share of wall) | reader's CPU | --no-verify wall | --no-verify daemon CPU | bindfs daemon CPU | rclone daemon CPU |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def cpu(figure, c):
        v = res.median(figure, c, "daemon_cpu")
        return "–" if v is None else f"{v:.2f} s"

    for figure, label, _, _ in figure_table(res):
        wall = res.median(figure, "blobfs")
        dcpu = res.median(figure, "blobfs", "daemon_cpu")
        ccpu = res.median(figure, "blobfs", "client_cpu")
        share = f" ({dcpu / wall * 100:.0f}%)" if wall and dcpu is not None else ""
        lines.append(
            f"| {label.split(' ')[0]} | {fmt_seconds(wall)} | {cpu(figure, 'blobfs')}{share} "
            f"| {'–' if ccpu is None else f'{ccpu:.2f} s'} | {fmt_seconds(res.median(figure, 'blobfs-noverify'))} "
            f"| {cpu(figure, 'blobfs-noverify')} | {cpu(figure, 'bindfs')} | {cpu(figure, 'rclone')} |")
    return "\n".join(lines)


def targets_table(res, s3=None):
    med = res.median

    def speed(figure, other, mine="blobfs"):
        a, b = med(figure, other), med(figure, mine)
        return None if a is None or b is None else a / b

    def daemon_note(figure, c="blobfs"):
        wall, cpu = med(figure, c), med(figure, c, "daemon_cpu")
        if wall is None or cpu is None:
            return ""
        return f"daemon CPU {cpu:.2f} s in {wall:.2f} s wall ({cpu / wall * 100:.0f}%)"

    rows = []

    def add(target, measured, met, note):
        status = "–" if met is None else ("**met**" if met else "**not met**")
        rows.append(f"| {target} | {measured} | {status} | {note} |")

    r = speed("1b", "native")
    add("1b warm sequential ≥ 0.9× native", "–" if r is None else f"{r:.2f}× native", None if r is None else r >= 0.9,
        daemon_note("1b") + ": served from the mount's page cache (keep_cache)")
    for other, name in (("bindfs", "bindfs"), ("rclone", "rclone mount")):
        r = speed("1a", other)
        rn = speed("1a", other, "blobfs-noverify")
        rr = speed("1a", other, "blobfs-remembered")
        variants = "; ".join(f"{flag}: {v:.2f}×" for flag, v in (("--no-verify", rn), ("--remember-verified", rr)) if v)
        add(f"1a first read ≥ 1.5× {name}",
            "–" if r is None else f"{r:.2f}× {name} ({variants})" if variants else f"{r:.2f}× {name}",
            None if r is None else r >= 1.5,
            f"{daemon_note('1a')}; --no-verify {daemon_note('1a', 'blobfs-noverify')}"
            + (f"; --remember-verified {daemon_note('1a', 'blobfs-remembered')}" if rr else ""))
    for figure, label in (("3c", "first, fresh mount"), ("3d", "second")):
        a, b = med(figure, "blobfs"), med(figure, "native")
        ratio_ = None if a is None or b is None else a / b
        add(f"`ls -l` of {int(res.meta['blobs_per_repo']):,} blobs ≤ 2× native `ls -l` of `_layers` ({label})",
            "–" if ratio_ is None else f"{ratio_:.2f}× native's time", None if ratio_ is None else ratio_ <= 2,
            daemon_note(figure))
    for figure, label in (("7a", "manifests"), ("7b", "tags")):
        a, b = med(figure, "blobfs"), med(figure, "native")
        ratio_ = None if a is None or b is None else a / b
        add(f"`ls -l` of a repository's {label} ≤ 2× native `ls -l` of its `_manifests` directory (issue 12)",
            "–" if ratio_ is None else f"{ratio_:.2f}× native's time", None if ratio_ is None else ratio_ <= 2,
            daemon_note(figure))
    a, b = med("3b", "blobfs"), med("3b", "native")
    ratio_ = None if a is None or b is None else a / b
    add("second `stat` pass within 1.2× native", "–" if ratio_ is None else f"{ratio_:.2f}× native's time",
        None if ratio_ is None else ratio_ <= 1.2, daemon_note("3b") + ": answered from the kernel's attribute cache")
    # Issue 13: reads through the kernel's passthrough.
    if res.runs("1a", "blobfs-ptoff"):
        for other, floor in (("native", 0.9), ("bindfs", 3.0)):
            r = speed("1a", other, "blobfs-noverify")
            add(f"issue 13: 1a first read with --no-verify ≥ {floor}× {NAMES[other]}", "–" if r is None else f"{r:.2f}× {NAMES[other]}",
                None if r is None else r >= floor, daemon_note("1a", "blobfs-noverify"))
        r = speed("1b", "native")
        add("issue 13: 1b second read ≥ 0.9× native", "–" if r is None else f"{r:.2f}× native", None if r is None else r >= 0.9,
            daemon_note("1b"))
        hashing, native_read, mine = med("6a", "sha256sum"), med("1a", "native"), med("1a", "blobfs")
        bound = None if hashing is None or native_read is None else hashing + native_read
        add("issue 13: verified first read ≤ 1.08× (sha256sum + native read of the same file)",
            "–" if bound is None or mine is None else f"{mine / bound:.2f}× ({fmt_seconds(mine)} against {fmt_seconds(hashing)} + {fmt_seconds(native_read)})",
            None if bound is None or mine is None else mine <= 1.08 * bound, daemon_note("1a"))
        r = speed("2a", "native")
        add("issue 13: 2a random 4 KiB reads, fresh mount ≥ 0.8× native", "–" if r is None else f"{r:.2f}× native",
            None if r is None else r >= 0.8, daemon_note("2a"))
        r = speed("3a", "bindfs")
        add("issue 13: 3a stat of 10,000 blobs, fresh mount ≥ 2× bindfs", "–" if r is None else f"{r:.2f}× bindfs",
            None if r is None else r >= 2, daemon_note("3a"))
    # Issue 15: metrics on cost at most 3% against metrics off, in the same run.
    for figure in ("1a", "1b", "3a", "3b"):
        off, on = med(figure, "blobfs"), med(figure, "blobfs-metrics")
        if off is None or on is None:
            continue
        add(f"issue 15: {figure} with metrics on within 3% of off", f"{on / off:.3f}× off's time ({fmt_seconds(on)} against {fmt_seconds(off)})",
            on <= 1.03 * off, daemon_note(figure, "blobfs-metrics"))
    r = speed("4", "native")
    add("write + verify + commit ≥ 0.8× native `cp` + `sha256sum`",
        "not measured: read-write mounts have not landed" if r is None else f"{r:.2f}× native `cp` + `sha256sum`",
        None if r is None else r >= 0.8, daemon_note("4"))
    for figure, label in (("6a", "the large blob"), ("6b", f"{int(res.meta['blobs_per_repo']):,} small blobs")):
        r = speed(figure, "sha256sum")
        add(f"`blobfs verify` ≥ 0.9× `sha256sum` ({label})", "–" if r is None else f"{r:.2f}× sha256sum",
            None if r is None else r >= 0.9, "")
    for figure, label in (("5a", "streaming the large blob"), ("5b", f"after stat of all {int(res.meta['total_blobs']):,} blobs"),
                          ("5c", "writing the 1 GiB file")):
        v = med(figure, "blobfs", "value")
        add(f"daemon peak RSS ≤ 64 MiB ({label})", "–" if v is None else f"{v:.1f} MiB", None if v is None else v <= 64, "")
    if s3 is not None:
        rows.extend(s3_target_rows(s3))
    return TARGETS_HEADER + "\n".join(rows)


TARGETS_HEADER = "| target (issue 5) | this run | | evidence from this run |\n|---|---|---|---|\n"


def runs_detail(res):
    lines = ["| figure | contender | runs (seconds; for 5a/5b and s3-rss: MiB) |", "|---|---|---|"]
    for (figure, contender), rows in sorted(res.rows.items()):
        if figure.endswith("-entries") or contender == "skipped":
            continue
        field = "value" if figure.startswith("5") or figure.startswith("s3-rss") else "seconds"
        values = [r[field] or r["value"] for r in rows if r[field] or r["value"]]
        lines.append(f"| {figure} | {NAMES.get(contender, contender)} | {' '.join(values)} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The S3 section (bench/s3.sh): blobfs over radosgw beside rclone mount and s3fs.

S3_CONTENDERS = ["native", "curl", "blobfs", "blobfs-smallcache", "rclone-off", "rclone-full", "s3fs"]
S3_PEERS = ["rclone-off", "rclone-full", "s3fs"]


class S3Results(Results):
    """The rows of s3-results.tsv (run.sh's columns and server_cpu) and s3-meta.env."""

    def __init__(self, directory):
        rows, meta = load(os.path.join(directory, "s3-results.tsv"), os.path.join(directory, "s3-meta.env"))
        self.rows = rows
        self.meta = meta
        self.large_bytes = int(meta["s3_large_mib"]) * 1024 * 1024
        self.medium_bytes = int(meta["s3_medium_mib"]) * 1024 * 1024

    def failures(self, figure, contender):
        return [r["value"] for r in self.rows.get((figure, contender), []) if r.get("value", "").startswith("failed")]

    def peak(self, figure, contender):
        values = self.values(figure, contender, "value")
        return max(values) if values else None


def s3_figures(s3):
    m = s3.meta
    n = int(m["s3_blobs"])
    return [
        ("s3-64a", f"first read of the {m['s3_medium_mib']} MiB blob (`dd bs=1M`)", "fresh mount (and cache)", ("bytes", s3.medium_bytes)),
        ("s3-64b", "second read of it", "same mount", ("bytes", s3.medium_bytes)),
        ("s3-1ga", f"first read of the {m['s3_large_mib']} MiB blob", "fresh mount (and cache)", ("bytes", s3.large_bytes)),
        ("s3-1gb", "second read of it", "same mount", ("bytes", s3.large_bytes)),
        ("s3-rand", f"{int(m['s3_random_reads']):,} random 4 KiB preads of it (seeded offsets; open included)",
         "fresh mount (and cache)", ("ops", int(m["s3_random_reads"]))),
        ("s3-lsa", f"`ls -l` of the {n:,} small blobs (blobfs: `repo/<name>/blobs`; peers and native: the flat prefix of their data objects)",
         "fresh mount", ("time", None)),
        ("s3-lsb", "`ls -l` again", "same mount", ("time", None)),
    ]


def s3_cell(s3, figure, c, kind):
    failed = s3.failures(figure, c)
    text = cell(s3, figure, c, kind)
    if text == "–" and failed:
        return failed[0]
    server = s3.median(figure, c, "server_cpu")
    if text != "–" and server is not None and c != "native":
        text += f"; server {server:.2f} s"
    if failed:
        text += f" ({len(failed)} run(s) {failed[0]})"
    return text


def s3_main_table(s3):
    present = [c for c in S3_CONTENDERS if any(key[1] == c for key in s3.rows)]
    lines = [
        "| figure | caches | runs | " + " | ".join(NAMES[c] if c != "native" else "native (a local copy)" for c in present) + " |",
        "|---|---|---|" + "---|" * len(present),
    ]
    for figure, label, caches, kind in s3_figures(s3):
        runs = max(s3.runs(figure, c) for c in present)
        cells = [f"**{s3_cell(s3, figure, c, kind)}**" if c == "blobfs" else s3_cell(s3, figure, c, kind) for c in present]
        lines.append(f"| {label} | {caches} | {runs} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def s3_cpu_table(s3):
    present = [c for c in S3_CONTENDERS if c not in ("native", "curl") and any(key[1] == c for key in s3.rows)]
    lines = ["| figure | " + " | ".join(NAMES[c] for c in present) + " |", "|---|" + "---|" * len(present)]
    for figure, label, _, _ in s3_figures(s3):
        cells = []
        for c in present:
            d, srv = s3.median(figure, c, "daemon_cpu"), s3.median(figure, c, "server_cpu")
            cells.append("–" if d is None else f"{d:.2f} s / {srv:.2f} s")
        lines.append(f"| {label.split(' (')[0]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def s3_memory_table(s3):
    present = [c for c in S3_CONTENDERS if c not in ("native", "curl") and any(key[1] == c for key in s3.rows)]
    steps = [("s3-rss-64", f"{s3.meta['s3_medium_mib']} MiB reads"), ("s3-rss-1g", f"{s3.meta['s3_large_mib']} MiB reads"),
             ("s3-rss-rand", "random reads"), ("s3-rss-ls", "`ls -l`")]
    lines = ["| daemon | " + " | ".join(f"after the {label}" for _, label in steps) + " |", "|---|" + "---|" * len(steps)]
    for c in present:
        cells = []
        for figure, _ in steps:
            med, peak = s3.median(figure, c, "value"), s3.peak(figure, c)
            cells.append("–" if med is None else f"{med:.1f} MiB (max {peak:.1f})")
        lines.append(f"| {NAMES[c]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def s3_target_rows(s3):
    """The issue-14 rows of the targets table, from an S3Results (or a failure note)."""
    if isinstance(s3, str):
        return [f"| issue 14: S3 figures (radosgw) | not measured: {s3} | – | |"]
    med = s3.median
    rows = []

    def add(target, measured, met, note):
        status = "–" if met is None else ("**met**" if met else "**not met**")
        rows.append(f"| {target} | {measured} | {status} | {note} |")

    def cpu_note(figure, c):
        wall, d, srv = med(figure, c), med(figure, c, "daemon_cpu"), med(figure, c, "server_cpu")
        if wall is None:
            return f"{NAMES[c]}: –"
        return f"{NAMES[c]} {fmt_seconds(wall)}, daemon CPU {d:.2f} s, server CPU {srv:.2f} s"

    mine, ceiling = med("s3-1ga", "blobfs"), med("s3-1ga", "curl")
    mb = s3.large_bytes / 1e6
    for peer in S3_PEERS:
        theirs = med("s3-1ga", peer)
        r = None if mine is None or theirs is None else theirs / mine
        note = cpu_note("s3-1ga", "blobfs") + "; " + cpu_note("s3-1ga", peer)
        if theirs is not None and ceiling is not None:
            note += (f"; 1.5× {NAMES[peer]} is {1.5 * mb / theirs:.0f} MB/s, and the server gave one curl stream "
                     f"{mb / ceiling:.0f} MB/s in this run")
        add(f"issue 14: verified first read of the {s3.meta['s3_large_mib']} MiB blob ≥ 1.5× {NAMES[peer]}'s (unverified)",
            "–" if r is None else f"{r:.2f}× {NAMES[peer]}", None if r is None else r >= 1.5, note)
    native, second = med("s3-1gb", "native"), med("s3-1gb", "blobfs")
    r = None if native is None or second is None else native / second
    add(f"issue 14: second read of the {s3.meta['s3_large_mib']} MiB blob ≥ 0.9× native reads of a local copy",
        "–" if r is None else f"{r:.2f}× native", None if r is None else r >= 0.9, cpu_note("s3-1gb", "blobfs"))
    peak = s3.peak("s3-rss-1g", "blobfs-smallcache")
    add(f"issue 14: daemon peak RSS ≤ 128 MiB while streaming the {s3.meta['s3_large_mib']} MiB blob "
        f"(`--cache-size {s3.meta['s3_small_cache']}`; largest of the runs)",
        "–" if peak is None else f"{peak:.1f} MiB", None if peak is None else peak <= 128,
        "with the default cache (the blob cached): " + ("–" if s3.peak("s3-rss-1g", "blobfs") is None else f"{s3.peak('s3-rss-1g', 'blobfs'):.1f} MiB"))
    rclone = [(med("s3-lsa", c), c) for c in ("rclone-off", "rclone-full") if med("s3-lsa", c) is not None]
    mine = med("s3-lsa", "blobfs")
    if rclone and mine is not None:
        best, which = min(rclone)
        add(f"issue 14: `ls -l` of {int(s3.meta['s3_blobs']):,} blobs ≤ 2× rclone mount's (fresh mounts; the faster rclone mode)",
            f"{mine / best:.2f}× {NAMES[which]}'s time", mine <= 2 * best,
            cpu_note("s3-lsa", "blobfs") + "; " + cpu_note("s3-lsa", which))
    else:
        add(f"issue 14: `ls -l` of {int(s3.meta['s3_blobs']):,} blobs ≤ 2× rclone mount's", "–", None, "")
    return rows


def s3_section(s3, with_targets):
    if isinstance(s3, str):
        return "\n".join(["#### S3 (radosgw)", "", f"Not measured: {s3}."])
    m = s3.meta
    parts = [
        "#### S3 (radosgw)",
        "",
        f"- Server: {m['s3_server']} on 127.0.0.1 (`scripts/radosgw.sh`: one monitor, one OSD, one radosgw; "
        + (f"started in {m['s3_server_start_seconds']} s" if m['s3_server_start_seconds'][0].isdigit() else "already running")
        + f"); rclone {m['s3_rclone']}, s3fs {m['s3_s3fs']}. Load average "
        f"{m['s3_load_start']} at the start of this section, {m['s3_load_end']} at its end; it took {m['s3_seconds']} s.",
        f"- Objects, the same for every contender, in bucket `{m['s3_bucket']}`: a registry store under `registry/` (a "
        f"{m['s3_medium_mib']} MiB and a {m['s3_large_mib']} MiB blob of seeded bytes linked in `bench/large`, and "
        f"`bench/many-00` of {int(m['s3_blobs']):,} small blobs) and the same small blobs' data under `flat/<hex>`; "
        f"uploaded with `rclone copy --transfers {m['s3_upload_transfers']}`: {int(m['s3_upload_objects']):,} objects in "
        f"{m['s3_upload_seconds']} s (server CPU {m['s3_upload_server_cpu']} s).",
        "- Contenders: " + "; ".join(text for c, text in (
            ("blobfs", f"blobfs `mount s3://{m['s3_bucket']}/registry` (verified; a fresh `--cache-dir` per mount)"),
            ("blobfs-smallcache", f"the same with `--cache-size {m['s3_small_cache']}` (the large blob does not fit, so it streams)"),
            ("rclone-off", "rclone mount `--read-only --vfs-cache-mode off`"),
            ("rclone-full", "rclone mount `--read-only --vfs-cache-mode full` (a fresh `--cache-dir`)"),
            ("s3fs", "s3fs `-o ro,url=…,use_path_request_style`"),
            ("native", "native reads of the local copy (in the host's page cache), the baseline"),
            ("curl", "`curl`: one signed GET of the whole object, what the server gives one stream"),
        ) if c in m["s3_contenders"].split()) + f". Rounds: {m['s3_runs']}, contenders taking turns; medians.",
        "",
        "Times are medians; \"server\" is the CPU seconds radosgw's processes (monitor, OSD, radosgw) spent during "
        "the step: close to the wall time, the server is the bottleneck.",
        "",
        s3_main_table(s3),
        "",
        "Daemon CPU / server CPU (seconds, medians):",
        "",
        s3_cpu_table(s3),
        "",
        "Daemon peak RSS (VmHWM at the end of each mount; median, and the largest of the runs):",
        "",
        s3_memory_table(s3),
    ]
    if with_targets:
        parts += ["", TARGETS_HEADER.replace("issue 5", "issue 14") + "\n".join(s3_target_rows(s3))]
    parts += ["", "<details><summary>Every S3 run</summary>", "", runs_detail(s3), "", "</details>"]
    return "\n".join(parts)


def load_s3(directory):
    """An S3Results, or the reason there is none (a string)."""
    failed = os.path.join(directory, "s3-failed.txt")
    if os.path.exists(failed):
        with open(failed) as f:
            return f.read().strip()
    if not os.path.exists(os.path.join(directory, "s3-meta.env")):
        return f"bench/s3.sh left no results in {directory}"
    return S3Results(directory)


def section(res, chart_name, s3=None):
    m = res.meta
    skipped = res.rows.get(("1c", "skipped"))
    parts = [
        f"### Results of the last run ({m['date']})",
        "",
        f"- Command: `{m['command']}`; blobfs {m['blobfs']}; whole run {m['bench_seconds']} s "
        f"(the store took {m['store_seconds']} s to write).",
        f"- Machine: {m['nproc']} cores, {m['cpu']}, {m['memory']}, kernel {m['kernel']}, libfuse {m['libfuse']}, "
        f"bindfs {m['bindfs']}, rclone {m['rclone']}, coreutils {m['coreutils']}; store on {m['filesystem']}.",
        f"- Load average at start {m['load_start']}, at end {m['load_end']}: the machine is shared (other "
        "engineers build and test on it), so single runs vary by tens of percent; the table shows medians and "
        "the contenders take turns within each run.",
        f"- Data: one {m['large_mib']} MiB blob (seeded AES-CTR bytes) in `bench/large`; {m['repos']} repositories "
        f"`bench/many-NN` of {int(m['blobs_per_repo']):,} distinct small blobs (64 B–4 KiB); {int(m['total_blobs']):,} "
        "blobs in all. Runs per figure: " f"{m['runs']} (light), {m['heavy_runs']} (heavy: 1c, 2, 3e, 6).",
        "",
        "Times are medians in seconds. **Ratios are speed ratios: the other's time ÷ blobfs's time, so "
        "above 1 means blobfs is faster, below 1 slower.**",
        "",
        main_table(res),
    ]
    if skipped:
        parts += ["", f"Figure 1c was skipped: {skipped[0]['value']}."]
    if res.rows.get(("4", "skipped")):
        parts += [
            "",
            "Figure 4, once read-write mounts are there: `cp write.src <mnt>/repo/bench/write/blobs/sha256:<hex>` "
            "through `blobfs mount --read-write` (verified against the digest and committed at close) against "
            "`cp write.src <dir>/copy && sha256sum <dir>/copy`, the source in the host page cache.",
        ]
    parts += [
        "",
        "#### Targets",
        "",
        targets_table(res, s3),
        "",
        "#### Verification throughput (figure 6)",
        "",
        verify_table(res),
        "",
        "#### Daemon memory (figure 5): peak RSS (VmHWM)",
        "",
        memory_table(res),
        "",
        "#### Where the time went: CPU seconds (medians)",
        "",
        "The daemon's CPU is all its threads, user + system, from `/proc/<pid>/stat` (10 ms ticks); the reader's is "
        "the measuring process (`dd`, `ls`, `find`) — for iobench figures it is not taken. On 2 cores, a daemon "
        "CPU close to the wall time means the daemon is the bottleneck.",
        "",
        cpu_table(res),
        "",
        f"![make bench: time relative to the baseline, and daemon memory]({chart_name})",
        "",
        "<details><summary>Every run</summary>",
        "",
        runs_detail(res),
        "",
        "</details>",
    ]
    if s3 is not None:
        parts += ["", s3_section(s3, with_targets=False)]
    return "\n".join(parts)


def chart(res, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = [(f, label.split(":")[0] if ":" in label else label) for f, label, _, _ in figure_table(res)]
    short = {
        "1a": "1a seq. read, first", "1b": "1b seq. read, second", "1c": "1c seq. read, cold",
        "2a": "2a random 4K, first", "2b": "2b random 4K, warm", "3a": "3a stat, first", "3b": "3b stat, second", "3g": "3g open+close",
        "3c": "3c ls -l, first", "3d": "3d ls -l, second", "7a": "7a ls -l manifests", "7b": "7b ls -l tags", "7c": "7c cat index.json", "3e": "3e find | wc -l", "3f": "3f stat all blobs", "4": "4 write the large file\n(native: cp+sha256sum)",
        "6a": "6a verify large blob", "6b": "6b verify 10k blobs",
    }
    rows = [f for f, _ in figures if f != "4" or res.runs("4", "blobfs")] + ["6a", "6b"]
    contenders = ["native", "blobfs", "blobfs-noverify", "blobfs-remembered", "blobfs-ptoff", "blobfs-noverify-ptoff", "blobfs-metrics", "bindfs", "rclone"]
    fig, (ax, axm) = plt.subplots(1, 2, figsize=(14, 7.5), gridspec_kw={"width_ratios": [3, 1.4]})
    height = 0.14
    for i, figure in enumerate(rows):
        if figure.startswith("6"):
            base = res.median(figure, "sha256sum")
            series = [("sha256sum", res.median(figure, "sha256sum")), ("blobfs", res.median(figure, "blobfs")),
                      ("openssl", res.median(figure, "openssl"))]
        else:
            base = res.median(figure, "native")
            series = [(c, res.median(figure, c)) for c in contenders]
        for j, (c, value) in enumerate(series):
            if value is None or not base:
                continue
            y = i + (j - 2.5) * height
            label = "baseline: native (4: cp + sha256sum; 6: sha256sum)" if c in ("native", "sha256sum") else NAMES[c]
            ax.barh(y, value / base, height=height, color=COLOURS[c], label=label)
            ax.text(value / base * 1.05, y, f"{value / base:.3g}", va="center", fontsize=6.5)
    ax.set_xscale("log")
    ax.axvline(1, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([short[f] for f in rows], fontsize=8.5)
    ax.invert_yaxis()
    ax.set_xlabel("time ÷ baseline (native; for 4 cp + sha256sum, for 6 sha256sum), log scale — shorter is faster")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=8, loc="lower right")
    ax.set_title(f"make bench, {res.meta['date']} ({res.meta['nproc']} cores, kernel {res.meta['kernel']})", fontsize=10)
    ax.grid(axis="x", which="both", alpha=0.25)

    daemons = ["blobfs", "blobfs-noverify", "bindfs", "rclone"]
    groups = [("5a", "5a after streaming\nthe large blob"), ("5b", "5b after stat of\nall blobs"),
              ("5c", "5c after writing\nthe large file")]
    for k, (figure, _) in enumerate(groups):
        for j, c in enumerate(daemons):
            v = res.median(figure, c, "value")
            if v is None:
                continue
            x = k + (j - 1.5) * 0.2
            axm.bar(x, v, width=0.2, color=COLOURS[c])
            axm.text(x, v, f"{v:.0f}", ha="center", va="bottom", fontsize=7)
    axm.axhline(64, color="red", linewidth=0.8, linestyle="--")
    axm.text(-0.45, 65, "target: 64 MiB", color="red", fontsize=7, ha="left", va="bottom")
    axm.set_xlim(-0.6, len(groups) - 0.4)
    axm.set_xticks(range(len(groups)))
    axm.set_xticklabels([label for _, label in groups], fontsize=7.5)
    axm.set_ylabel("daemon peak RSS (MiB)")
    axm.set_title("daemon memory (VmHWM)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def update_doc(doc_path, text):
    block = f"{BEGIN}\n{text}\n{END}"
    if os.path.exists(doc_path):
        with open(doc_path) as f:
            doc = f.read()
    else:
        doc = "# blobfs benchmarks\n\n"
    if BEGIN in doc and END in doc:
        head, _, rest = doc.partition(BEGIN)
        _, _, tail = rest.partition(END)
        doc = head + block + tail
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    with open(doc_path + ".tmp", "w") as f:
        f.write(doc)
    os.replace(doc_path + ".tmp", doc_path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("results", nargs="?")
    parser.add_argument("meta", nargs="?")
    parser.add_argument("--s3", help="the directory bench/s3.sh wrote its results into")
    parser.add_argument("--s3-only", metavar="DIR", help="print only the S3 section from DIR")
    parser.add_argument("--doc")
    parser.add_argument("--chart")
    args = parser.parse_args()
    if args.s3_only:
        print(s3_section(load_s3(args.s3_only), with_targets=True))
        return
    if not args.results or not args.meta:
        parser.error("results.tsv and meta.env are needed (or --s3-only DIR)")
    res = Results(*load(args.results, args.meta))
    chart_name = os.path.basename(args.chart) if args.chart else "benchmarks.png"
    text = section(res, chart_name, load_s3(args.s3) if args.s3 else None)
    print(text)
    if args.chart:
        chart(res, args.chart)
        print(f"\nbench: chart written to {args.chart}", file=sys.stderr)
    if args.doc:
        update_doc(args.doc, text)
        print(f"bench: results written to {args.doc}", file=sys.stderr)


if __name__ == "__main__":
    main()

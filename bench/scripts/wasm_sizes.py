#!/usr/bin/env python3
"""What a Wasm module's code is made of (bench/README.md, "Module size and cold start").

Reads a module built with symbols (the release profile strips them):

    CARGO_PROFILE_RELEASE_STRIP=false cargo build --release --target wasm32-wasip1 \\
        -p policy --target-dir target/sizes
    python3 bench/scripts/wasm_sizes.py target/sizes/wasm32-wasip1/release/policy.wasm
    python3 bench/scripts/wasm_sizes.py M.wasm --top 40            # largest functions
    python3 bench/scripts/wasm_sizes.py M.wasm --group serde        # one group's functions

Sizes are function body bytes before wasm-opt, grouped by the demangled name (`c++filt`) with
the first matching rule below; a function inlined into another counts where it ended up.
"""
import argparse
import collections
import re
import subprocess

GROUPS = [
    ("serde", r"serde|Deserializ|Visitor|visit_|deserialize"),
    ("regex_lite", r"regex_lite"),
    ("fmt", r"flt2dec|fmt|Display|Debug|float_to|pad_integral|write_str|Formatter"),
    ("std/panic", r"std\[|std::|panic|rust_begin|__rust|backtrace|wasi"),
    ("malloc", r"dlmalloc|dlfree|dispose_chunk|malloc|realloc|free|calloc|RawVec|raw_vec"),
    ("btree", r"btree"),
    ("hashbrown", r"hashbrown|HashMap"),
    ("proxy_wasm", r"proxy_wasm"),
    ("threat_score", r"threat_score"),
    ("sdk_ext+filters", r"sdk_ext|policy|router|suite|tcp_guard|example|noop"),
    ("other crates", r"sha2|base64|glob|ipnet|Ip.*Addr|net::|form_urlencoded|percent_encoding"),
    ("core/alloc", r"core|alloc"),
]


def leb(b, i):
    r = s = 0
    while True:
        x = b[i]
        i += 1
        r |= (x & 0x7F) << s
        s += 7
        if x < 0x80:
            return r, i


def functions(path):
    """(body bytes, name) of every defined function, and the section sizes."""
    b = open(path, "rb").read()
    i, names, imported, bodies, sections = 8, {}, 0, [], []
    while i < len(b):
        sid = b[i]
        size, i = leb(b, i + 1)
        end = i + size
        if sid == 0:
            n, j = leb(b, i)
            custom = b[j : j + n].decode()
            j += n
            sections.append((f"custom {custom}", size))
            while custom == "name" and j < end:
                sub = b[j]
                sub_size, j = leb(b, j + 1)
                if sub == 1:
                    count, k = leb(b, j)
                    for _ in range(count):
                        idx, k = leb(b, k)
                        n, k = leb(b, k)
                        names[idx] = b[k : k + n].decode("utf8", "replace")
                        k += n
                j += sub_size
        else:
            sections.append((sid, size))
            if sid == 2:  # imports: functions among them shift the function index space
                count, j = leb(b, i)
                for _ in range(count):
                    for _ in range(2):
                        n, j = leb(b, j)
                        j += n
                    kind = b[j]
                    j += 1
                    if kind == 0:
                        _, j = leb(b, j)
                        imported += 1
                    elif kind in (1, 2):
                        j += 1 if kind == 1 else 0
                        flags = b[j]
                        _, j = leb(b, j + 1)
                        if flags & 1:
                            _, j = leb(b, j)
                    elif kind == 3:
                        j += 2
            elif sid == 10:
                count, j = leb(b, i)
                for _ in range(count):
                    n, j = leb(b, j)
                    bodies.append(n)
                    j += n
        i = end
    raw = [names.get(imported + k, f"func{imported + k}") for k in range(len(bodies))]
    demangled = subprocess.run(
        ["c++filt"], input="\n".join(raw), capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return list(zip(bodies, demangled)), sections


def group_of(name):
    for group, rx in GROUPS:
        if re.search(rx, name):
            return group
    return "other"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("module")
    ap.add_argument("--top", type=int, default=0, help="list the N largest functions")
    ap.add_argument("--group", help="list the functions of one group")
    args = ap.parse_args()
    funcs, sections = functions(args.module)
    total = sum(n for n, _ in funcs)
    data = sum(n for sid, n in sections if sid == 11)
    print(f"{args.module}: code {total} bytes in {len(funcs)} functions, data {data} bytes")
    by_group = collections.Counter()
    for n, name in funcs:
        by_group[group_of(name)] += n
    for group, n in by_group.most_common():
        print(f"{n:9d} {100 * n / total:5.1f}%  {group}")
    chosen = [f for f in funcs if args.group is None or group_of(f[1]) == args.group]
    for n, name in sorted(chosen, reverse=True)[: args.top or (30 if args.group else 0)]:
        print(f"{n:9d}  {name[:200]}")


if __name__ == "__main__":
    main()

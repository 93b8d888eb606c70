#!/usr/bin/env python3
"""Sandbox benchmark: a trivial Python program, N runs with C concurrent clients, through the
sandbox service (POST /execute) and, in the same run, started directly by the engine's CLI
(`podman run` with the same isolation flags). Rounds alternate between the two so drift on a
shared machine hits both alike. Standard library only.

Usage: bench.py --url http://127.0.0.1:PORT --secret JWT_SECRET --image IMAGE --out FILE
"""

import argparse
import base64
import concurrent.futures as cf
import datetime
import hashlib
import hmac
import json
import os
import platform
import statistics
import subprocess
import time
import urllib.error
import urllib.request

CODE = "print('hello')"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_token(secret: str) -> str:
    """A sandbox token (HS256, audience golden-arch-sandbox) for a developer, as the gateway
    mints one per proxied request (auth::TokenKeys::issue_for); session tokens are refused."""
    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(
        json.dumps(
            {
                "sub": "bench",
                "role": "developer",
                "permissions": ["execute:code"],
                "iat": now,
                "exp": now + 3600,
                "iss": "golden-arch-controlplane",
                "aud": "golden-arch-sandbox",
            }
        ).encode()
    )
    signing_input = f"{header}.{claims}".encode()
    signature = b64(hmac.new(secret.encode(), signing_input, hashlib.sha256).digest())
    return f"{header}.{claims}.{signature}"


def via_service(url: str, token: str) -> float:
    body = json.dumps({"code": CODE, "language": "python", "timeout": 10}).encode()
    request = urllib.request.Request(
        f"{url}/execute",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        result = json.load(response)
    elapsed = time.perf_counter() - started
    if result.get("stdout") != "hello\n" or result.get("exit_code") != 0:
        raise RuntimeError(f"unexpected result: {result}")
    return elapsed


def direct_command(image: str, runtime: str | None) -> list[str]:
    """The same container the service asks for, through the CLI."""
    cmd = [
        "podman", "run", "--rm", "--network", "none", "--read-only",
        "--tmpfs", "/tmp:rw,nosuid,nodev,noexec,size=16m,mode=1777",
        "--tmpfs", "/var/tmp:ro,size=64k", "--tmpfs", "/run:ro,size=64k",
        "--user", "65534:65534", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        "--memory", "128m", "--memory-swap", "128m", "--cpus", "1", "--pids-limit", "64",
        "--log-driver", "none", "-e", "PYTHONUNBUFFERED=1",
    ]
    if runtime:
        cmd += ["--runtime", runtime]
    return cmd + [image, "python3", "-c", CODE]


def via_cli(cmd: list[str]) -> float:
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - started
    if out.returncode != 0 or out.stdout != "hello\n":
        raise RuntimeError(f"podman run failed ({out.returncode}): {out.stderr.strip()}")
    return elapsed


def batch(fn, runs: int, clients: int) -> tuple[list[float], float]:
    """`runs` calls of fn from `clients` threads; latencies and wall time."""
    started = time.perf_counter()
    with cf.ThreadPoolExecutor(max_workers=clients) as pool:
        latencies = list(pool.map(lambda _: fn(), range(runs)))
    return latencies, time.perf_counter() - started


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--runtime", default=None)
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "200")))
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    token = mint_token(args.secret)
    cmd = direct_command(args.image, args.runtime)
    service_fn = lambda: via_service(args.url, token)  # noqa: E731
    direct_fn = lambda: via_cli(cmd)  # noqa: E731

    # Warm both paths (image layers in the page cache, connection set-up).
    batch(service_fn, args.clients * 2, args.clients)
    batch(direct_fn, args.clients * 2, args.clients)

    per_round = max(1, args.runs // args.rounds)
    results = {"service": ([], 0.0), "direct": ([], 0.0)}
    for r in range(args.rounds):
        order = [("service", service_fn), ("direct", direct_fn)]
        if r % 2:
            order.reverse()
        for name, fn in order:
            lat, wall = batch(fn, per_round, args.clients)
            acc, total = results[name]
            results[name] = (acc + lat, total + wall)
            print(f"round {r + 1}/{args.rounds} {name}: {per_round / wall:.2f} runs/s")

    rows = {}
    for name, (lat, wall) in results.items():
        rows[name] = {
            "runs": len(lat),
            "rps": len(lat) / wall,
            "p50": percentile(lat, 50) * 1000,
            "p99": percentile(lat, 99) * 1000,
            "mean": statistics.fmean(lat) * 1000,
        }
    s, d = rows["service"], rows["direct"]
    podman = subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout.strip()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Sandbox: service vs direct `podman run`",
        "",
        f"A trivial Python program (`{CODE}`), {s['runs']} runs per path with {args.clients}"
        f" concurrent clients, in {args.rounds} alternating rounds; measured {date} on"
        f" {os.cpu_count()} cores, {podman}, runtime {args.runtime or 'runc (engine default)'}.",
        "",
        "- **service**: `POST /execute` on the sandbox service (release build, 4 runners),"
        " bearer token, JSON; the service creates, attaches, starts and inspects (waits if"
        " needed) a container through the Engine API, answers, then removes the container.",
        "- **direct**: `podman run --rm` with the same isolation flags (no network, read-only"
        " root, tmpfs /tmp, user 65534, no capabilities, no-new-privileges, memory/CPU/pids"
        " limits), started by the CLI.",
        "",
        "| path | runs | runs/s | p50 ms | p99 ms | mean ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in ("service", "direct"):
        r = rows[name]
        lines.append(
            f"| {name} | {r['runs']} | {r['rps']:.2f} | {r['p50']:.0f} | {r['p99']:.0f} |"
            f" {r['mean']:.0f} |"
        )
    lines += [
        "",
        f"Service / direct: p50 latency **{s['p50'] / d['p50']:.2f}×**, p99"
        f" **{s['p99'] / d['p99']:.2f}×**, throughput **{s['rps'] / d['rps']:.2f}×**"
        " (target: latency ≤ 1.2×).",
        "",
        "Reproduce: `bench/sandbox/run.sh` (BENCH_RUNS=200 by default).",
        "",
    ]
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Whole-daemon benchmarks: a portable service manager and its client, driven as a user would.

Runs inside a systemd box (bench/run boots one and calls this twice: once for systemd 252's
systemd-portabled with portablectl, once for portctld with portctl, on the same images):

  daemons.py prepare                     build the image sets under /var/tmp/bench
  daemons.py run CLIENT SERVICE [REPS]   run every benchmark, print JSON results
  daemons.py report REFERENCE OURS       print the comparison table (markdown)

Every timing includes the client process, as a user (or a script) sees it. Nothing here is a
test: no figure is asserted.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

POOL = "/var/lib/portables"
STORE = "/var/tmp/bench"
HERE = os.path.dirname(os.path.abspath(__file__))
MKIMAGE = os.path.join(HERE, "..", "tests", "fixtures", "mkimage")


def sh(*args, check=True, **kw):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if check and r.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def mkimage(out, *args):
    sh(MKIMAGE, *args, out)


# --- prepare ---------------------------------------------------------------------------------

def with_prefix(src_dir, dst_dir, prefix):
    """A copy of a directory image whose unit is PREFIX-test.service."""
    shutil.copytree(src_dir, dst_dir, symlinks=True)
    units = os.path.join(dst_dir, "usr/lib/systemd/system")
    os.rename(os.path.join(units, "bench-test.service"), os.path.join(units, f"{prefix}-test.service"))


def prepare():
    shutil.rmtree(STORE, ignore_errors=True)
    os.makedirs(STORE)
    single = os.path.join(STORE, "single")
    os.makedirs(single)
    mkimage(os.path.join(single, "bench_dir"), "--prefix", "bench")
    mkimage(os.path.join(single, "bench_sq.raw"), "--format", "squashfs", "--prefix", "bench")
    mkimage(os.path.join(single, "bench_ext4.raw"), "--format", "ext4", "--prefix", "bench")
    mkimage(os.path.join(single, "fifty_1.raw"), "--format", "squashfs", "--units", "50")
    template = os.path.join(STORE, "template")
    mkimage(template, "--prefix", "bench")
    # 20 raw images with different units, for the concurrent attach.
    conc = os.path.join(STORE, "concurrent")
    os.makedirs(conc)
    for i in range(1, 21):
        tree = os.path.join(STORE, f"tree{i}")
        with_prefix(template, tree, f"conc{i:02}")
        sh("mksquashfs", tree, os.path.join(conc, f"conc{i:02}.raw"), "-noappend", "-quiet", "-all-root")
        shutil.rmtree(tree)
    # 100 directory images with different units, all attached for the state query.
    state = os.path.join(STORE, "state")
    os.makedirs(state)
    for i in range(1, 101):
        with_prefix(template, os.path.join(state, f"st{i:03}"), f"st{i:03}")
    # Pools of 10, 100 and 1000 images, a third each directories, squashfs and ext4.
    for n in (10, 100, 1000):
        d = os.path.join(STORE, f"list{n}")
        os.makedirs(d)
        for i in range(n):
            name = f"l{i:04}"
            kind = i % 3
            if kind == 0:
                shutil.copytree(template, os.path.join(d, name), symlinks=True)
            elif kind == 1:
                shutil.copyfile(os.path.join(single, "bench_sq.raw"), os.path.join(d, name + ".raw"))
            else:
                sh("cp", "--sparse=always", os.path.join(single, "bench_ext4.raw"), os.path.join(d, name + ".raw"))
    print(json.dumps({"prepared": STORE}))


# --- run -------------------------------------------------------------------------------------

def use(*sets):
    """Makes the pool hold exactly the images of the named sets (moved in and out, cheaply)."""
    for d in os.listdir(POOL) if os.path.isdir(POOL) else []:
        origin = open(os.path.join(STORE, ".origin-" + d)).read() if os.path.exists(os.path.join(STORE, ".origin-" + d)) else None
        if origin is None:
            sys.exit(f"{POOL}/{d}: not a benchmark image; clean the pool first")
        os.rename(os.path.join(POOL, d), os.path.join(STORE, origin, d))
        os.unlink(os.path.join(STORE, ".origin-" + d))
    os.makedirs(POOL, exist_ok=True)
    for s in sets:
        for d in os.listdir(os.path.join(STORE, s)):
            os.rename(os.path.join(STORE, s, d), os.path.join(POOL, d))
            with open(os.path.join(STORE, ".origin-" + d), "w") as f:
                f.write(s)


def timed(args, check=True):
    t = time.perf_counter()
    r = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t
    if check and r.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return elapsed


def stats(samples, unit="ms", scale=1000.0):
    xs = sorted(x * scale for x in samples)
    q = statistics.quantiles(xs, n=10) if len(xs) >= 2 else [xs[0]] * 9
    return {"median": statistics.median(xs), "p10": q[0], "p90": q[-1], "n": len(xs), "unit": unit}


def main_pid(service):
    out = sh("systemctl", "show", "-p", "MainPID", "--value", service).stdout.strip()
    return int(out or 0)


def proc_status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def stop(service):
    sh("systemctl", "stop", service)
    for _ in range(100):
        if main_pid(service) == 0:
            return
        time.sleep(0.05)


def run(client, service, reps):
    c = [client, "--no-pager", "--no-ask-password"]
    results = {}

    def bench(name, fn, n=reps, setup=None):
        samples = []
        fn()  # warm-up (page cache, daemon running)
        for _ in range(n):
            if setup:
                setup()
            samples.append(fn())
        results[name] = stats(samples)

    use("single")
    for image, label in [("bench_sq.raw", "squashfs"), ("bench_ext4.raw", "ext4"), ("bench_dir", "directory")]:
        path = os.path.join(POOL, image)
        bench(f"attach+detach {label}",
              lambda: timed(c + ["attach", "--no-reload", path]) + timed(c + ["detach", "--no-reload", path]))
    # The same under another process's writes: 1.5 GB of dirty page cache, written again
    # before each sample, that a file-system-wide sync would have to flush first.
    path = os.path.join(POOL, "bench_sq.raw")
    dirty = os.path.join(STORE, "dirty")

    def dirty_the_cache():
        sh("dd", "if=/dev/zero", f"of={dirty}", "bs=1M", "count=1500", "status=none")
    bench("attach+detach squashfs, 1.5 GB dirty", lambda: timed(c + ["attach", "--no-reload", path])
          + timed(c + ["detach", "--no-reload", path]), n=max(3, reps // 4), setup=dirty_the_cache)
    os.unlink(dirty)
    sh("sync")
    timed(c + ["attach", "--no-reload", path])
    bench("reattach squashfs", lambda: timed(c + ["reattach", "--no-reload", path]))
    timed(c + ["detach", "--no-reload", path])
    bench("GetImageMetadata (inspect, 50 units)", lambda: timed(c + ["inspect", "fifty_1", "-"]))

    for n in (10, 100, 1000):
        use(f"list{n}")
        bench(f"ListImages ({n} images)", lambda: timed(c + ["list"]), n=max(5, reps // (n // 100 + 1)))

    use("state")
    for i in range(1, 101):
        timed(c + ["attach", "--no-reload", f"st{i:03}"])
    bench("GetImageState (100 attached)", lambda: timed(c + ["is-attached", "st050"]))
    for i in range(1, 101):
        timed(c + ["detach", "--no-reload", f"st{i:03}"])

    use("concurrent")
    names = [f"conc{i:02}" for i in range(1, 21)]

    def concurrent():
        t = time.perf_counter()
        procs = [subprocess.Popen(c + ["attach", "--no-reload", n], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE) for n in names]
        for p in procs:
            if p.wait() != 0:
                sys.exit(f"concurrent attach failed: {p.stderr.read().decode()}")
        elapsed = time.perf_counter() - t
        for n in names:
            timed(c + ["detach", "--no-reload", n])
        return elapsed
    bench("20 clients attach 20 images", concurrent, n=max(3, reps // 4))

    # Cold start: from D-Bus activation to the first reply, client included; and its parts:
    # the service started by systemd until it is ready, and the first call then.
    use("list10")
    bench("cold start (activation + list)", lambda: timed(c + ["list"]), setup=lambda: stop(service),
          n=max(5, reps // 2))
    bench("cold start: systemctl start of the service", lambda: timed(["systemctl", "start", service]),
          setup=lambda: stop(service), n=max(5, reps // 2))

    def first_call():
        stop(service)
        sh("systemctl", "start", service)
        return timed(c + ["list"])
    bench("cold start: first call to the started service", first_call, n=max(5, reps // 2))
    bench("warm: list (10 images)", lambda: timed(c + ["list"]))
    # The floor under any cold start: systemd starting a unit that runs /bin/true.
    with open("/run/systemd/system/bench-floor.service", "w") as f:
        f.write("[Service]\nType=oneshot\nExecStart=/bin/true\n")
    sh("systemctl", "daemon-reload")
    bench("floor: systemctl start of /bin/true", lambda: timed(["systemctl", "start", "bench-floor.service"]),
          n=max(5, reps // 2))
    os.unlink("/run/systemd/system/bench-floor.service")
    sh("systemctl", "daemon-reload")
    stop(service)
    timed(c + ["list"])
    time.sleep(1)
    results["idle RSS"] = {"median": proc_status(main_pid(service), "VmRSS"), "unit": "KiB", "n": 1}
    use("list1000")
    stop(service)
    timed(c + ["list"])
    results["peak RSS (list of 1000)"] = {"median": proc_status(main_pid(service), "VmHWM"), "unit": "KiB", "n": 1}
    use()
    print(json.dumps(results, indent=1))


# --- report ----------------------------------------------------------------------------------

TARGETS = {
    "attach+detach squashfs": 0.25,
    "attach+detach ext4": 0.25,
    "attach+detach directory": 0.5,
    "ListImages (1000 images)": 0.5,
    "cold start (activation + list)": 0.5,
    "idle RSS": 1.0,
}


def fmt(r):
    if r["unit"] == "KiB":
        return f"{r['median'] / 1024:.1f} MiB"
    return f"{r['median']:.2f} ms ({r['p10']:.2f}–{r['p90']:.2f})"


def report(ref_path, ours_path):
    ref = json.load(open(ref_path))
    ours = json.load(open(ours_path))
    print("| benchmark | systemd-portabled 252 + portablectl | portctld + portctl | ratio | target |")
    print("|---|---|---|---|---|")
    for name in ref:
        ratio = ours[name]["median"] / ref[name]["median"]
        target = TARGETS.get(name)
        verdict = "" if target is None else f"≤ {target}× {'met' if ratio <= target else 'MISSED'}"
        print(f"| {name} | {fmt(ref[name])} | {fmt(ours[name])} | {ratio:.2f}× | {verdict} |")
    print("\nTimes are medians (10th–90th percentile) over the runs, client process included.")
    quiet, dirty = ours["attach+detach squashfs"], ours["attach+detach squashfs, 1.5 GB dirty"]
    ratio = dirty["median"] / quiet["median"]
    print(f"Under another process's 1.5 GB of dirty data, portctl's attach+detach takes {ratio:.2f}× "
          f"its quiet time (target ≤ 2×: {'met' if ratio <= 2 else 'MISSED'}).")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "prepare":
        prepare()
    elif len(sys.argv) in (4, 5) and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) == 5 else 20)
    elif len(sys.argv) == 4 and sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)

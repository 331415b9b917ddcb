"""Peak RSS of the fetcher while it archives one large document (default 1 GiB).

The parent starts moto's server as a separate process (it keeps every uploaded part in memory, which
would swamp the figure) and runs a fresh child process. The child holds exactly what a fetcher
container holds plus the Invoicing emulator streaming the document:

* the real ``Archiver`` (claim, GetInvoicePDF, download -> SHA-256 -> spool file, multipart upload,
  summary.json, mark archived), with its boto3 clients and the urllib3 download pool;
* the Invoicing emulator, serving the document from a generator (64 KiB chunks), in threads;
* not moto's storage: S3/DynamoDB/SQS requests go over loopback to the moto process.

The child samples its own RSS (/proc/self/statm) every 10 ms while archiving, and reads VmHWM (the
kernel's high-water mark, reset just before the archive starts) and ``ru_maxrss`` afterwards.

    .venv/bin/python bench/memory.py [--size-mib 1024]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import common

ACCOUNT = "123456789012"
PERIOD = (2026, 9)


def run(size_mib: int, workdir: Path) -> dict[str, Any]:
    """Parent side: moto in its own process, the measured archive in a fresh child."""
    port = common.free_port()
    moto = subprocess.Popen(  # noqa: S603
        [common.PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=common.clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        common.wait_for_port(port)
        spool = workdir / "spool"
        spool.mkdir(parents=True, exist_ok=True)
        env = common.clean_env({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
        result: dict[str, Any] = common.run_child(
            "memory.py",
            ["--size-mib", str(size_mib), "--spool", str(spool), "--log-file", str(workdir / "memory.log")],
            env,
            workdir / "memory.json",
            timeout=900,
        )
        result["moto_peak_rss"] = common.proc_status(moto.pid).get("VmHWM", 0)
        result["moto_pid"] = moto.pid
    finally:
        common.stop_process(moto)
    return result


class Sampler:
    """Samples this process's RSS and the spool directory's size in a background thread."""

    def __init__(self, spool: Path, interval: float = 0.01) -> None:
        self.spool, self.interval = spool, interval
        self.peak_rss = 0
        self.peak_spool = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _spool_bytes(self) -> int:
        """Bytes in open files under the spool directory (tempfile uses unnamed O_TMPFILE files on
        Linux, invisible to a directory listing, so look at this process's open descriptors)."""
        total = 0
        prefix = str(self.spool) + "/"
        try:
            descriptors = os.listdir("/proc/self/fd")
        except OSError:
            return 0
        for fd in descriptors:
            try:
                if os.readlink(f"/proc/self/fd/{fd}").startswith(prefix):
                    total += os.stat(f"/proc/self/fd/{fd}").st_size
            except OSError:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, common.rss_now())
            self.samples += 1
            if self.samples % 10 == 0:
                self.peak_spool = max(self.peak_spool, self._spool_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def child(size_mib: int, spool: Path, log_file: Path) -> dict[str, Any]:
    """Child side: everything below runs in the measured process."""
    import resource

    from invoice_archiver.cli.local import logs_to as _logs_to
    from invoice_archiver.cli.local import provision as _provision
    from invoice_archiver.cli.target import LOCAL_DEFAULTS
    from invoice_archiver.dal import clients
    from invoice_archiver.logic import fetch_invoice
    from invoice_archiver.logic.fetch_context import FetchContext
    from invoice_archiver.logic.invoice_messages import to_message
    from invoice_archiver.logic.sourcing import KnownSources
    from invoice_archiver.sandbox.dataset import generate
    from invoice_archiver.sandbox.documents import document_length, document_sha256
    from invoice_archiver.sandbox.runner import Sandbox

    after_imports = common.proc_status()
    size = size_mib * common.MIB
    dataset = generate(
        seed=1,
        accounts=(ACCOUNT,),
        periods=(PERIOD,),
        invoices_per_account_period=1,
        document_size=size,
        supplemental=(0, 0),
    )
    invoice = dataset.invoices[0]
    os.environ.update(LOCAL_DEFAULTS)
    os.environ.update({"ACCOUNT_IDS": ACCOUNT, "SPOOL_DIRECTORY": str(spool)})
    with Sandbox(dataset=dataset) as sandbox:
        assert sandbox.moto is None, "moto must run out of process for this measurement"
        assert sandbox.emulator is not None
        clients.reset()
        with _logs_to(log_file):
            settings = _provision()
            invoicing = clients.invoicing(settings.invoicing_region, settings.invoicing_max_attempts)
            context = FetchContext(
                settings=settings,
                invoicing_for=lambda source: invoicing,
                s3=clients.s3(),
                dynamodb=clients.dynamodb(),
                sources=KnownSources(settings, lambda role: invoicing, str),
            )
            message = to_message(invoice.summary)
            ready = common.proc_status()
            maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            hwm_reset = common.reset_peak_rss()
            started = time.perf_counter()
            cpu_started = time.process_time()
            with Sampler(spool) as sampler:
                outcome = fetch_invoice.archive(context, message)
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
        after = common.proc_status()
        maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        served = sandbox.emulator.stats.snapshot()
        s3 = clients.s3()
        listed = s3.list_objects_v2(Bucket=settings.archive_bucket).get("Contents", [])
        keys = [str(o["Key"]) for o in listed if not str(o["Key"]).endswith("summary.json")]
        head = s3.head_object(Bucket=settings.archive_bucket, Key=keys[0]) if keys else {}
    stored_sha = str(head.get("Metadata", {}).get("sha256", ""))
    expected_sha = document_sha256(invoice.document)
    return {
        "outcome": str(outcome),
        "document_bytes": document_length(invoice.document),
        "stored_bytes": int(head.get("ContentLength", 0)),
        "downloaded_bytes": int(served["download_bytes"]),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rss_after_imports": after_imports.get("VmRSS", 0),
        "rss_ready": ready.get("VmRSS", 0),
        "hwm_ready": ready.get("VmHWM", 0),
        "hwm_reset": hwm_reset,
        "peak_rss_sampled": sampler.peak_rss,
        "samples": sampler.samples,
        "peak_hwm_during": after.get("VmHWM", 0) if hwm_reset else 0,
        "ru_maxrss_before": maxrss_before,
        "ru_maxrss_after": maxrss_after,
        "rss_after": after.get("VmRSS", 0),
        "peak_spool_bytes": sampler.peak_spool,
        "spool_left": sorted(os.listdir(spool)),
        "sha256_stored": stored_sha,
        "sha256_expected": expected_sha,
        "sha256_ok": bool(stored_sha) and stored_sha == expected_sha,
        "multipart_threshold": settings.multipart_threshold_bytes,
    }


def summarize(r: dict[str, Any]) -> dict[str, Any]:
    """The figures that go into the final table."""
    peak = max(r["peak_hwm_during"], r["peak_rss_sampled"])
    return {
        "baseline_mb": common.mib(r["rss_ready"]),
        "peak_mb": common.mib(peak),
        "delta_mb": common.mib(peak - r["rss_ready"]),
        "ru_maxrss_mb": common.mib(r["ru_maxrss_after"]),
        "bytes": r["stored_bytes"],
        "seconds": r["seconds"],
        "mib_per_s": common.mib(r["stored_bytes"]) / r["seconds"] if r["seconds"] else 0.0,
    }


def report(r: dict[str, Any]) -> None:
    s = summarize(r)
    print(f"  archived {r['stored_bytes']:,} bytes ({common.mib(r['stored_bytes']):.0f} MiB), {r['outcome']}")
    print(f"  RSS after imports        {common.mib(r['rss_after_imports']):8.1f} MiB")
    print(f"  RSS ready (baseline)     {s['baseline_mb']:8.1f} MiB  (sandbox up, clients built)")
    print(f"  peak RSS during archive  {s['peak_mb']:8.1f} MiB  (VmHWM reset before the archive; ", end="")
    print(f"sampled peak {common.mib(r['peak_rss_sampled']):.1f} MiB over {r['samples']} samples)")
    print(f"  delta                    {s['delta_mb']:8.1f} MiB")
    print(f"  ru_maxrss (whole life)   {s['ru_maxrss_mb']:8.1f} MiB")
    print(f"  time                     {s['seconds']:8.1f} s    ({s['mib_per_s']:.0f} MiB/s, ", end="")
    print(f"{r['cpu_seconds']:.1f} CPU s in this process)")
    print(
        f"  spool file peak          {common.mib(r['peak_spool_bytes']):8.1f} MiB on disk; "
        f"files left: {len(r['spool_left'])}"
    )
    print(f"  SHA-256 in S3 metadata == emulator's document_sha256: {r['sha256_ok']}")
    print(
        f"  (moto, separate process, peak RSS {common.mib(r.get('moto_peak_rss', 0)):.0f} MiB: not counted)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024, help="document size in MiB (default 1024)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--spool", help=argparse.SUPPRESS)
    parser.add_argument("--log-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        common.write_result(args.result, child(args.size_mib, Path(args.spool), Path(args.log_file)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        result = run(args.size_mib, Path(tmp))
    report(result)
    return 0 if result["sha256_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

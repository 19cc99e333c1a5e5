"""Scenarios 6: every kind of 429 and stopping means stopping, on the real CLI.

A per-day 429 mid-run with and without a fallback provider, a spend-cap 429, a Retry-After
of 10^9 seconds, and SIGTERM while rows wait on a one-hour pause.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from bench.harness import emulator_get, emulator_post, emulator_process, run_child, write_catalog
from bench.soak.common import SOAK, Outcome, Services, cli, keys_under, report_rows, wait_for

CONCURRENCY = 16


def _providers(path: Path, **urls: str) -> str:
    """A providers file of emulator-backed providers: name -> base URL."""
    path.write_text("".join(f'[providers.{name}]\nkind = "emulator"\nbase_url = "{url}"\n'
                            "timeout_s = 5.0\n" for name, url in urls.items()))
    return str(path)


def _run(svc: Services, name: str, urls: dict[str, str], rows: int, *extra: str):
    """Run the CLI on a fresh catalog of ``rows`` against providers ``urls`` (first = main)."""
    catalog = write_catalog(SOAK / f"{name}.csv", rows)
    report = SOAK / f"{name}.json"
    providers = _providers(SOAK / f"{name}.toml", **urls)
    names = list(urls)
    fallback = [arg for other in names[1:] for arg in ("--fallback-provider", other)]
    command = cli(catalog, f"s3://{svc.s3.bucket}/{name}", "--providers-file", providers,
                  "--provider", names[0], *fallback, "--concurrency", str(CONCURRENCY),
                  "--report", str(report), *extra)
    run = run_child(command, env=svc.env(next(iter(urls.values())), SOAK / f"spool-{name}"),
                    timeout=600)
    (SOAK / f"{name}.log").write_text(run.stderr)  # timestamped log lines, for the record
    return run, report, time.time()  # the end's wall time, beside the emulator's refusals


def _logged_at(log: str, text: str, last: bool = False) -> float | None:
    """Seconds since midnight of the first (or last) log line containing ``text``."""
    lines = [line for line in log.splitlines() if text in line and line[:2].isdigit()]
    if not lines:
        return None
    hours, minutes, seconds = lines[-1 if last else 0].split(" ", 1)[0].split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _settled_s(log: str, cause: str) -> str:
    """How long after the log line naming ``cause`` the last chunk of rows finished."""
    begun, ended = _logged_at(log, cause), _logged_at(log, "generate-rows", last=True)
    return f"{ended - begun:.1f} s" if begun is not None and ended is not None else "?"


def per_day(svc: Services, rows: int, fallback: bool) -> Outcome:
    """A per-day 429 after a fifth of the rows; with a fallback every row is done, without
    the run ends within 30 s of the first refusal, every remaining row skipped."""
    quota = rows // 5
    outcome = Outcome(f"6{'b' if fallback else 'a'}. per-day 429 after {quota} images, "
                      f"{'with' if fallback else 'no'} fallback")
    with emulator_process("--latency", "0.1", "--jitter", "0.1") as google, \
            emulator_process("--latency", "0.1", "--jitter", "0.1") as relay:
        emulator_post(google, "config", {"rpd": quota, "rpd_retry_delay_s": 39043.0})
        urls = {"google": google, "relay": relay} if fallback else {"google": google}
        run, report, ended = _run(svc, f"daily-{'fb' if fallback else 'alone'}", urls, rows)
        stats, ledger = emulator_get(google, "stats"), emulator_get(google, "ledger")
        relayed = emulator_get(relay, "ledger")
    totals, results = report_rows(report)
    skipped = [r for r in results if r["status"] == "skipped"]
    outcome.check("report written with every row", len(results) == rows)
    outcome.check("refusals only for requests in flight", 0 < stats["daily_429"] <= CONCURRENCY)
    outcome.check("nothing billed twice", not any(
        n > 1 for n in {**ledger["by_prompt"], **relayed["by_prompt"]}.values()))
    after = ended - (stats["first_refusal_at"] or ended)
    if fallback:
        outcome.check("every row done, exit 0", run.returncode == 0
                      and totals.get("succeeded") == rows)
        outcome.check("the rest went to the fallback", relayed["images"] == rows - quota)
    else:
        outcome.check("exit 1", run.returncode == 1)
        outcome.check("ended within 30 s of the first per-day 429", after < 30)
        outcome.check("every remaining row skipped with its reset", len(skipped) == rows - quota
                      and all(r["reason"].startswith("daily quota (resets") for r in skipped))
    outcome.figures = (f"{rows} rows: {ledger['images']} by google, {relayed['images']} by the "
                       f"fallback, {len(skipped)} skipped; {stats['daily_429']} per-day 429s; "
                       f"rows settled {_settled_s(run.stderr, 'per-day quota')} and exit "
                       f"{run.returncode} {after:.1f} s after the first; "
                       f"wall {run.wall_s:.0f} s")
    return outcome


def spend_cap(svc: Services, rows: int) -> Outcome:
    """A spend-cap 429 after a fifth of the rows: no further paid request, a clear message."""
    cap = rows // 5
    outcome = Outcome(f"7c. spend-cap 429 after {cap} images")
    with emulator_process("--latency", "0.1", "--jitter", "0.1") as google:
        emulator_post(google, "config", {"spend_cap_after": cap})
        run, report, _ = _run(svc, "spend-cap", {"google": google}, rows)
        stats, ledger = emulator_get(google, "stats"), emulator_get(google, "ledger")
    totals, results = report_rows(report)
    after_cap = stats["requests"] - cap
    outcome.check("report written with every row, exit 1",
                  len(results) == rows and run.returncode == 1)
    outcome.check("nothing billed past the cap", ledger["images"] == cap)
    outcome.check("no request after the refusal but those in flight", after_cap <= CONCURRENCY)
    outcome.check("clear run-level message", "spend cap" in run.stderr
                  and "raise the spend cap, top up the prepaid balance" in run.stderr)
    outcome.check("the rest skipped 'spend cap'", totals.get("skipped") == rows - cap)
    outcome.figures = (f"{rows} rows: {ledger['images']} billed, {after_cap} requests after "
                       f"the cap (bound {CONCURRENCY}), {totals.get('skipped')} skipped, "
                       f"wall {run.wall_s:.0f} s")
    return outcome


def huge_retry_after(svc: Services, rows: int) -> Outcome:
    """A 429 with Retry-After (and RetryInfo) of 10^9 s: the provider is out, the run ends."""
    outcome = Outcome("7d. Retry-After of 10^9 s")
    with emulator_process("--latency", "0.1", "--jitter", "0.1") as google:
        emulator_post(google, "config", {"retry_after_header": True, "fault_retry_delay_s": 1e9})
        emulator_post(google, "script", {"prompt_contains": f"product {rows // 3}",
                                         "faults": ["429"]})
        run, report, _ = _run(svc, "retry-after", {"google": google}, rows)
    totals, results = report_rows(report)
    out = [r for r in results if (r["reason"] or "").startswith("out for now")]
    outcome.check("report written with every row, exit 1",
                  len(results) == rows and run.returncode == 1)
    outcome.check("rows left 'out for now', none failed",
                  bool(out) and totals.get("failed") == 0)
    outcome.check("the run did not wait on the hint", run.wall_s < 120)
    outcome.figures = (f"{rows} rows: {totals.get('succeeded')} done before the 429, "
                       f"{len(out)} out for now; wall {run.wall_s:.0f} s")
    return outcome


def sigterm_on_pause(svc: Services, rows: int) -> Outcome:
    """SIGTERM while every row waits on a one-hour pause: exit within 15 s, report written,
    then a second run finishes and nothing is billed twice."""
    outcome = Outcome("7e. SIGTERM while rows wait on a one-hour pause")
    name, first = "sigterm-pause", rows // 4
    catalog, report = write_catalog(SOAK / f"{name}.csv", rows), SOAK / f"{name}.json"
    command = cli(catalog, f"s3://{svc.s3.bucket}/{name}", "--concurrency", str(CONCURRENCY),
                  "--max-retry-hint", "7200", "--report", str(report))
    with emulator_process("--latency", "0.1") as url:
        emulator_post(url, "config", {"retry_after_header": True, "fault_retry_delay_s": 3600.0})
        emulator_post(url, "script", {"prompt_contains": "benchmark product",
                                      "faults": ["ok"] * first + ["429"] * CONCURRENCY})
        env = svc.env(url, SOAK / f"spool-{name}")
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        paused = wait_for(lambda: emulator_get(url, "stats")["by_status"].get("429", 0) > 0)
        time.sleep(2.0)  # every row now waits on the pause, a slot or a retry
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=300)
        took = time.monotonic() - sent
        (SOAK / f"{name}.log").write_text(stderr)  # timestamped log lines, for the record
        _, results = report_rows(report)
        billed = emulator_get(url, "ledger")["images"]
        emulator_post(url, "reset", {"scripts": True})
        rerun = run_child(command, env=env, timeout=600)
        ledger = emulator_get(url, "ledger")
    outcome.check("rows were waiting on the pause", paused and billed < rows)
    outcome.check("exit 1 within 15 s", proc.returncode == 1 and took < 15)
    outcome.check("report written with every row", len(results) == rows)
    outcome.check("no traceback", "Traceback" not in stderr)
    outcome.check("second run finishes", rerun.returncode == 0)
    outcome.check("nothing billed twice", billed + ledger["images"] == rows
                  and len(keys_under(svc.s3, f"{name}/images/")) == rows)
    outcome.figures = (f"{rows} rows: {billed} billed before the stop; rows settled "
                       f"{_settled_s(stderr, 'SIGTERM: no new')} and exit "
                       f"{proc.returncode} {took:.1f} s after SIGTERM; the second run billed "
                       f"{ledger['images']}")
    return outcome

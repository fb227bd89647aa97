"""The system's side of a measured window: its metrics and its process tree's CPU and memory,
over the same window as the latencies, and its memory after a cool-down without load.
"""

from __future__ import annotations

import subprocess
import time

import psutil

from bench.collect.process import TreeSampler, tree_rss
from bench.collect.prometheus import metric_deltas, scrape
from bench.launch.supervisor import RunningProcess, exit_text
from bench.models import ProcessStats


class SystemGone(Exception):
    """The system stopped answering during the measured window."""

    def __init__(self, message: str, stderr_tail: str) -> None:
        super().__init__(message)
        self.stderr_tail = stderr_tail


class SystemWindow:
    """The system's side of the measured window: its /metrics and its process tree's CPU/RSS.

    A system that serves no metrics (no http probe and no `metrics` table) has only the process
    figures. An overloaded system may not answer /metrics in time: then the trial has no server-side
    figures (`metrics_error` says why) but stands. Only a system that died fails it.

    `parts` are other processes of the system measured (a core behind a proxy, started as a
    support on the system's CPUs): their trees are sampled over the same window, into
    `parts_process`.

    `support_metrics` are the /metrics of supports that serve them (a relay, a database's
    counts), by support: scraped at the same two moments, their deltas merged into `metrics`. One
    that does not answer leaves its series out and says so in `metrics_error`.

    `cool_down()`, called once the load generator has stopped, waits `cooldown_s` and samples the
    tree's RSS again: what a service keeps of a load after it (a pool that grew and never shrinks,
    a leak) shows there, where the peak alone cannot tell it from a transient.
    """

    #: Short, so that a slow scrape cannot move the window it measures.
    SCRAPE_TIMEOUT_S = 1.0
    #: The default seconds of no load before the RSS is sampled again.
    COOLDOWN_S = 2.0

    def __init__(
        self,
        proc: RunningProcess,
        metrics_url: str | None,
        cooldown_s: float = COOLDOWN_S,
        parts: dict[str, RunningProcess] | None = None,
        support_metrics: dict[str, str] | None = None,
    ) -> None:
        self._proc = proc
        self._support_urls = dict(support_metrics or {})
        self._support_before: dict[str, str] = {}
        self._parts = dict(parts or {})
        self._part_samplers: dict[str, TreeSampler] = {}
        self.parts_process: dict[str, ProcessStats] = {}
        self._metrics_url = metrics_url
        self._cooldown_s = cooldown_s
        self._sampler: TreeSampler | None = None
        self._before: str | None = None
        self.metrics: dict[str, float] = {}
        self.metrics_error: str | None = None
        self.process: ProcessStats | None = None

    def _scrape(self, when: str) -> str | None:
        if self._metrics_url is None:  # the implementation serves no metrics
            return None
        try:
            return scrape(self._metrics_url, timeout_s=self.SCRAPE_TIMEOUT_S)
        except OSError as e:
            gone = self._exit_code()
            if gone is not None:
                raise SystemGone(
                    f"{exit_text(gone)} during the run", self._proc.stderr_tail()
                ) from None
            self.metrics_error = f"/metrics did not answer when the window {when}: {e}"
            return None

    def _scrape_supports(self, when: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, url in self._support_urls.items():
            try:
                found[name] = scrape(url, timeout_s=self.SCRAPE_TIMEOUT_S)
            except OSError as e:
                problem = f"support {name}'s /metrics did not answer when the window {when}: {e}"
                self.metrics_error = "; ".join(filter(None, [self.metrics_error, problem]))
        return found

    def open(self) -> None:
        self._before = self._scrape("opened")
        self._support_before = self._scrape_supports("opened")
        try:
            self._sampler = TreeSampler(self._proc.pid)
        except psutil.NoSuchProcess:
            raise SystemGone(
                f"{exit_text(self._exit_code())} during the run", self._proc.stderr_tail()
            ) from None
        self._sampler.start()
        for name, part in self._parts.items():
            try:  # a part already gone is the deployment's to report (its casualties)
                sampler = TreeSampler(part.pid)
            except psutil.NoSuchProcess:
                continue
            sampler.start()
            self._part_samplers[name] = sampler

    def close(self) -> None:
        assert self._sampler is not None, "close() before open()"
        self.process = self._sampler.stop()
        self.parts_process = {name: s.stop() for name, s in self._part_samplers.items()}
        after = self._scrape("closed")
        supports_after = self._scrape_supports("closed")
        if self._before is not None and after is not None:
            self.metrics = metric_deltas(self._before, after)
        for name, text in supports_after.items():
            if name in self._support_before:
                self.metrics |= metric_deltas(self._support_before[name], text)

    def cool_down(self) -> None:
        """After the load: wait `cooldown_s`, then record the tree's RSS in `process`.

        Nothing when the window never closed, `cooldown_s` is 0, or the system is gone (the
        caller finds out from its exit code).
        """
        if self.process is None or self._cooldown_s <= 0:
            return
        time.sleep(self._cooldown_s)
        rss = tree_rss(self._proc.pid)
        if rss is not None:
            self.process = self.process.model_copy(
                update={"rss_after_cooldown_bytes": rss, "cooldown_s": self._cooldown_s}
            )

    def _exit_code(self) -> int | None:
        """A dead process explains a silent /metrics best; give it a moment to be reaped."""
        try:
            return self._proc.popen.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return None

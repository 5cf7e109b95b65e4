"""Worker processes under a supervisor: ``workers=N`` (docs/deployment.md).

The supervisor is the process that bound the listening sockets.  It forks
``workers`` worker processes that each run the native engine over the
inherited sockets (the kernel's accept queue of each socket is shared by all
of them), and then never runs the application itself.  It

- replaces a worker that dies (logging its exit status or signal), backing
  off while workers die before serving, and gives up (``WorkersFailed``) when
  every worker dies before serving or the application cannot be imported;
- drains every worker on SIGTERM or SIGINT (each finishes the requests it has
  in flight, up to the engine's 30 s) and returns once all have exited; a
  second SIGINT kills them;
- on SIGHUP starts a new set of workers and stops the old ones only as the
  new ones accept, so no connection is refused and no request is cut;
  without ``preload`` the new workers import the application afresh;
- adds a worker on SIGTTIN and removes one on SIGTTOU;
- replaces a worker that asks to retire after ``max_requests`` requests, or
  whose resident memory passed ``max_worker_rss`` MiB (the replacement
  accepts before the old one drains);
- kills (SIGKILL) a worker whose heartbeat stopped for ``worker_timeout``
  seconds and starts another.

Which worker accepts a connection is the kernel's choice; to even out bursts of
keep-alive connections, each worker publishes its count of open connections in
its slot of a page of memory shared by all workers (mapped here before the
first fork), and a worker well ahead of another one lets it accept for a moment
(the engine's ``balance()``; ``AcceptBalance.swift``).  A slot is -1 while its
worker does not accept; the supervisor resets the slot of a worker it reaps.

The heartbeat is a pipe per worker.  The worker's event loop writes a byte to
it every ``HEARTBEAT_INTERVAL`` seconds from a timer, without the GIL, but only
while the engine's own Python-side thread has had the GIL within the last
second: so both a stopped event loop and an application holding the GIL in a
C call stop the beats.  The first beat also tells the supervisor that the
worker is accepting.  A worker that reached ``max_requests`` writes ``R``.
"""
import logging
import mmap
import os
import random
import select
import signal
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

from .utilities import logger

#: Seconds between two heartbeats of a worker's event loop.
HEARTBEAT_INTERVAL = 0.5
#: How long a stopping worker may take before it is killed: the engine's
#: 30 s drain, 5 s to join its threads, and a margin.
STOP_TIMEOUT = 40.0
#: How long a draining worker keeps idle keep-alive connections open, so a
#: client's next request (already sent, or about to be) is answered with
#: ``Connection: close`` rather than meeting a closed socket.
DRAIN_GRACE = 1.0
#: The exit status of a worker that could not import the application.
APP_LOAD_ERROR = 4
#: The exit status of a worker whose server could not start (a certificate
#: file that no longer loads after a SIGHUP, say).
START_ERROR = 5
#: Seconds between two reads of the workers' resident memory (max_worker_rss).
MEMORY_CHECK_INTERVAL = 1.0
#: Longest pause between two starts of a worker that keeps dying at start-up.
MAX_BACKOFF = 10.0

#: Slots of the shared open-connection counts: worker numbers above this
#: (many SIGTTINs) serve without balancing.
BALANCE_SLOTS = 512
_SLOT = 8
_NOT_ACCEPTING = b"\xff" * _SLOT

_BEAT = b"."
_RETIRE = b"R"
#: Starts what a worker that failed to import the application sends.
_ERROR = b"E"


class WorkersFailed(RuntimeError):
    """The supervisor gave up: no worker could start serving."""


class AppImport:
    """The application named as ``module:object``, imported in each worker.

    ``waitress-serve`` hands one of these to the server when workers import
    the application after fork (``preload`` off), so the supervisor never
    imports it and a SIGHUP serves changed code.
    """

    def __init__(self, spec: str, call: bool = False) -> None:
        self.spec = spec
        self.call = call

    def load(self) -> Any:
        import pkgutil

        app = pkgutil.resolve_name(self.spec)
        return app() if self.call else app

    def __call__(self, environ: Any, start_response: Any) -> Any:
        raise RuntimeError("AppImport is loaded in each worker; it is not an application")


class _Worker:
    def __init__(self, number: int, generation: int, pid: int, beats: int) -> None:
        self.number = number
        self.generation = generation
        self.pid = pid
        #: Read end of the heartbeat pipe (-1 once at EOF).
        self.beats = beats
        self.started = time.monotonic()
        self.last_beat = self.started
        self.ready = False
        #: Asked to retire (max_requests): replaced, then stopped.
        self.retiring = False
        #: When SIGTERM was sent (None: not stopping).
        self.stopping: Optional[float] = None
        self.killed = False
        #: What a worker that could not import the application reported.
        self.error = b""

    def __repr__(self) -> str:
        return f"worker {self.number} (pid {self.pid})"


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = str(number)
        return f"was killed by signal {number} ({name})"
    return f"exited with status {os.WEXITSTATUS(status)}"


def _label_records(label: str) -> Callable[[], None]:
    """Make every log record of this process start with ``[label]``;
    returns the undo."""
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if isinstance(record.msg, str):
            record.msg = f"[{label}] {record.msg}"
        return record

    logging.setLogRecordFactory(factory)
    return lambda: logging.setLogRecordFactory(previous)


def _set_title(title: str) -> None:
    """The process title, if setproctitle is installed (not a dependency)."""
    try:
        import setproctitle  # type: ignore[import-not-found]
    except ImportError:
        return
    setproctitle.setproctitle(title)


_HANDLED = ("SIGTERM", "SIGINT", "SIGHUP", "SIGTTIN", "SIGTTOU", "SIGCHLD", "SIGUSR1")


class Supervisor:
    def __init__(
        self,
        application: Any,
        socket_map: Dict[int, Any],
        adj: Any,
    ) -> None:
        self.application = application
        self.map = socket_map
        self.adj = adj
        self.target = adj.workers
        #: The generation new workers belong to; every SIGHUP takes a new number.
        self.generation = 0
        self._generations = 0
        self.workers: Dict[int, _Worker] = {}
        self.signals: List[int] = []
        self.stopping = False
        self.ever_ready = False
        self.boot_failures = 0
        self.next_spawn = 0.0
        #: Generations whose workers could not import the application.
        self.broken: set = set()
        self.failure: Optional[str] = None
        self._wakeup_r = -1
        self._wakeup_w = -1
        self._next_memory_check = 0.0
        #: Each worker's open connections (a machine word per worker number).
        self.counts = mmap.mmap(-1, BALANCE_SLOTS * _SLOT)
        self.counts.write(_NOT_ACCEPTING * BALANCE_SLOTS)
        #: With metrics_listen: every worker's metrics, a slot per worker
        #: number, so whichever worker answers a scrape reports them all
        #: (Metrics.swift). Only the pages of slots in use are ever touched.
        self.metrics_memory: Optional[mmap.mmap] = None
        self.metrics_slot_bytes = 0
        if getattr(adj, "metrics_listen", None):
            from . import _native

            self.metrics_slot_bytes = _native.metrics_slot_bytes()
            self.metrics_memory = mmap.mmap(-1, BALANCE_SLOTS * self.metrics_slot_bytes)

    # -- the loop ---------------------------------------------------------

    def run(self) -> None:
        self._base_factory = logging.getLogRecordFactory()
        undo_label = _label_records(f"supervisor pid {os.getpid()}")
        _set_title("waitress: supervisor")
        previous = self._install_signals()
        try:
            logger.info(
                "Starting %d worker process(es), %d thread(s) each",
                self.target,
                self.adj.threads,
            )
            if self.adj.max_worker_rss and _resident_mib(os.getpid()) is None:
                logger.warning(
                    "max_worker_rss is ignored: this system has no /proc/PID/statm"
                )
            while True:
                self._maintain()
                if self.stopping and not self.workers:
                    break
                self._wait(0.25)
                self._handle_signals()
                self._reap()
                self._check_timeouts()
                self._check_memory()
        finally:
            for worker in list(self.workers.values()):
                # Only reached on an error in the loop itself.
                self._kill(worker)
            self._restore_signals(previous)
            undo_label()
        if self.failure is not None:
            raise WorkersFailed(self.failure)

    def _install_signals(self) -> Dict[int, Any]:
        self._wakeup_r, self._wakeup_w = os.pipe()
        os.set_blocking(self._wakeup_r, False)
        os.set_blocking(self._wakeup_w, False)
        previous: Dict[int, Any] = {}
        for name in _HANDLED:
            number = getattr(signal, name, None)
            if number is not None:
                previous[number] = signal.signal(number, self._on_signal)
        previous[-1] = signal.set_wakeup_fd(self._wakeup_w)
        return previous

    def _restore_signals(self, previous: Dict[int, Any]) -> None:
        signal.set_wakeup_fd(previous.pop(-1))
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
        os.close(self._wakeup_r)
        os.close(self._wakeup_w)

    def _on_signal(self, number: int, frame: Any) -> None:
        self.signals.append(number)

    def _wait(self, timeout: float) -> None:
        fds = [self._wakeup_r] + [w.beats for w in self.workers.values() if w.beats >= 0]
        try:
            readable, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:
            return
        now = time.monotonic()
        for fd in readable:
            if fd == self._wakeup_r:
                try:
                    os.read(fd, 4096)
                except BlockingIOError:
                    pass
                continue
            worker = next((w for w in self.workers.values() if w.beats == fd), None)
            if worker is None:
                continue
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                continue
            if not data:
                os.close(fd)
                worker.beats = -1
                continue
            if not worker.ready and (worker.error or data.startswith(_ERROR)):
                worker.error += data
                continue
            worker.last_beat = now
            if not worker.ready:
                worker.ready = True
                self.ever_ready = True
                self.boot_failures = 0
                logger.info("%s is serving", _capital(worker))
            if _RETIRE in data and not worker.retiring and worker.stopping is None:
                worker.retiring = True
                logger.info(
                    "%s served max_requests; replacing it", _capital(worker)
                )

    def _handle_signals(self) -> None:
        while self.signals:
            number = self.signals.pop(0)
            if number in (signal.SIGTERM, signal.SIGINT):
                if self.stopping:
                    if number == signal.SIGINT:
                        logger.info("Second interrupt: killing the workers")
                        for worker in list(self.workers.values()):
                            self._kill(worker)
                    continue
                logger.info(
                    "Shutting down: draining %d worker(s)", len(self.workers)
                )
                self.stopping = True
                for worker in list(self.workers.values()):
                    self._stop(worker)
            elif number == getattr(signal, "SIGUSR1", None):
                # Each worker writes the access log itself: each reopens it.
                for worker in list(self.workers.values()):
                    try:
                        os.kill(worker.pid, number)
                    except ProcessLookupError:
                        pass
            elif self.stopping:
                continue
            elif number == signal.SIGHUP:
                self._generations += 1
                self.generation = self._generations
                logger.info(
                    "Reloading: starting %d new worker(s), then draining the old",
                    self.target,
                )
            elif number == getattr(signal, "SIGTTIN", None):
                self.target += 1
                logger.info("SIGTTIN: now %d worker(s)", self.target)
            elif number == getattr(signal, "SIGTTOU", None):
                if self.target > 1:
                    self.target -= 1
                logger.info("SIGTTOU: now %d worker(s)", self.target)

    def _reap(self) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            self._clear_slot(worker.number)
            if worker.beats >= 0:
                os.close(worker.beats)
            self._exited(worker, status)

    def _clear_slot(self, number: int) -> None:
        if number <= BALANCE_SLOTS:
            at = (number - 1) * _SLOT
            self.counts[at : at + _SLOT] = _NOT_ACCEPTING
            if self.metrics_memory is not None:
                # The slot's first word is its worker's pid: 0, no longer live
                # (its counters stay, for the next worker with this number).
                at = (number - 1) * self.metrics_slot_bytes
                self.metrics_memory[at : at + 8] = bytes(8)

    def _exited(self, worker: _Worker, status: int) -> None:
        how = _describe_status(status)
        if worker.stopping is not None and not worker.killed:
            logger.info("%s %s", _capital(worker), how)
            return
        if worker.killed and (self.stopping or worker.stopping is not None):
            logger.warning("%s %s", _capital(worker), how)
            return
        if (
            os.WIFEXITED(status)
            and os.WEXITSTATUS(status) in (APP_LOAD_ERROR, START_ERROR)
            and not worker.ready
        ):
            self._load_failed(worker, os.WEXITSTATUS(status) == START_ERROR)
            return
        if worker.ready:
            logger.error("%s %s; starting another", _capital(worker), how)
            return
        self.boot_failures += 1
        delay = min(MAX_BACKOFF, 0.1 * 2 ** (self.boot_failures - 1))
        self.next_spawn = time.monotonic() + delay
        logger.error(
            "%s %s before serving; starting another in %.1f s",
            _capital(worker),
            how,
            delay,
        )
        if not self.ever_ready and self.boot_failures >= self.target:
            self._give_up("every worker exited before serving")

    def _load_failed(self, worker: _Worker, start: bool = False) -> None:
        """A worker could not import the application, or (``start``) its
        server could not start with the options as they now are."""
        generation = worker.generation
        if generation in self.broken:
            return
        self.broken.add(generation)
        # Reported once for the generation, however many workers failed.
        detail = worker.error[len(_ERROR) :].decode("utf-8", "replace").rstrip()
        if start:
            logger.error("%s could not start: %s", _capital(worker), detail)
        else:
            logger.error(
                "%s could not import the application %s:\n%s",
                _capital(worker),
                getattr(self.application, "spec", ""),
                detail,
            )
        running = [w for w in self.workers.values() if w.stopping is None and w.ready]
        older = [w for w in running if w.generation < generation]
        if older:
            # A reload whose new code does not import: keep the old workers.
            logger.error(
                "The reload is abandoned: the running workers keep serving"
            )
            for w in list(self.workers.values()):
                if w.generation == generation:
                    self._stop(w)
            self.generation = max(w.generation for w in older)
            return
        if running:
            # A replacement for a worker that died, and the code on disk no
            # longer imports: serve on with the workers that run.
            logger.error(
                "Serving with %d worker(s) until a SIGHUP brings %s",
                len(running),
                "files that load" if start else "code that imports",
            )
            return
        self._give_up("a worker could not start" if start else "the application could not be imported")

    def _give_up(self, reason: str) -> None:
        logger.error("Stopping: %s", reason)
        self.failure = reason
        self.stopping = True
        for worker in list(self.workers.values()):
            self._stop(worker)

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        timeout = self.adj.worker_timeout
        for worker in list(self.workers.values()):
            if worker.killed:
                continue
            if worker.stopping is not None:
                if now - worker.stopping > STOP_TIMEOUT:
                    logger.error(
                        "%s did not stop within %d s: killing it",
                        _capital(worker),
                        STOP_TIMEOUT,
                    )
                    self._kill(worker)
            elif timeout and now - worker.last_beat > timeout:
                logger.error(
                    "%s sent no heartbeat for %d s (worker_timeout): killing it",
                    _capital(worker),
                    timeout,
                )
                self._kill(worker)

    def _check_memory(self) -> None:
        limit = self.adj.max_worker_rss
        now = time.monotonic()
        if not limit or now < self._next_memory_check:
            return
        self._next_memory_check = now + MEMORY_CHECK_INTERVAL
        for worker in list(self.workers.values()):
            if not worker.ready or worker.retiring or worker.stopping is not None or worker.killed:
                continue
            rss = _resident_mib(worker.pid)
            if rss is not None and rss > limit:
                worker.retiring = True
                logger.warning(
                    "%s uses %d MiB, over max_worker_rss (%d MiB); replacing it",
                    _capital(worker),
                    rss,
                    limit,
                )

    # -- keeping the right workers ------------------------------------------

    def _maintain(self) -> None:
        if self.stopping:
            return
        running = [w for w in self.workers.values() if w.stopping is None and not w.killed]
        old = [w for w in running if w.generation < self.generation or w.retiring]
        new = [w for w in running if w not in old]
        # Start what is missing (once the back-off allows).
        while (
            len(new) < self.target
            and time.monotonic() >= self.next_spawn
            and self.generation not in self.broken
        ):
            worker = self._spawn()
            if worker is None:
                break
            new.append(worker)
        # Too many current ones (SIGTTOU): stop the youngest.
        for worker in sorted(new, key=lambda w: w.started)[self.target :]:
            self._stop(worker)
        # Old ones go as new ones accept, so capacity never drops.
        ready = sum(1 for w in new[: self.target] if w.ready)
        excess = ready + len(old) - self.target
        for worker in sorted(old, key=lambda w: w.started)[: max(0, excess)]:
            self._stop(worker)

    def _spawn(self) -> Optional[_Worker]:
        numbers = {w.number for w in self.workers.values()}
        number = next(n for n in range(1, len(numbers) + 2) if n not in numbers)
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        sys.stdout.flush()
        sys.stderr.flush()
        # Blocked across fork, so that a SIGTERM sent right after it reaches
        # the worker's own handler, not the copy of the supervisor's.
        handled = {n for n in (getattr(signal, name, None) for name in _HANDLED) if n}
        signal.pthread_sigmask(signal.SIG_BLOCK, handled)
        try:
            pid = os.fork()
        except OSError as exc:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, handled)
            os.close(read_end)
            os.close(write_end)
            logger.error("Could not start a worker (%s); trying again in 1 s", exc)
            self.next_spawn = time.monotonic() + 1.0
            return None
        if pid != 0:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, handled)
        if pid == 0:
            status = 1
            try:
                os.close(read_end)
                status = self._worker_main(number, write_end)
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else 0
            except BaseException:
                traceback.print_exc()
            finally:
                try:
                    logging.shutdown()
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(status)
        os.close(write_end)
        worker = _Worker(number, self.generation, pid, read_end)
        self.workers[pid] = worker
        logger.info("Started %s", worker)
        return worker

    def _stop(self, worker: _Worker) -> None:
        if worker.stopping is not None or worker.killed:
            return
        worker.stopping = time.monotonic()
        try:
            os.kill(worker.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    def _kill(self, worker: _Worker) -> None:
        worker.killed = True
        try:
            os.kill(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    # -- in the worker --------------------------------------------------------

    def _worker_main(self, number: int, beats: int) -> int:
        from .server import _listening_servers, _Serving, access_log_is_file

        # The supervisor's descriptors and handlers are not the worker's.
        for worker in self.workers.values():
            if worker.beats >= 0:
                os.close(worker.beats)
        signal.set_wakeup_fd(-1)
        os.close(self._wakeup_r)
        os.close(self._wakeup_w)
        for name in ("SIGHUP", "SIGTTIN", "SIGTTOU", "SIGINT", "SIGUSR1"):
            # Ctrl-C reaches the whole process group; the supervisor turns it
            # into one SIGTERM per worker.
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, _drain_once)
        signal.pthread_sigmask(
            signal.SIG_UNBLOCK, {n for n in (getattr(signal, name, None) for name in _HANDLED) if n}
        )
        self.workers = {}
        logging.setLogRecordFactory(self._base_factory)
        _label_records(f"worker {number} pid {os.getpid()}")
        _set_title(f"waitress: worker {number}")

        application = self.application
        if isinstance(application, AppImport):
            try:
                application = application.load()
            except Exception:
                _report(beats, _ERROR + traceback.format_exc().encode("utf-8", "replace"))
                return APP_LOAD_ERROR
        servers = _listening_servers(self.map)
        for server in servers:
            server.application = application

        serving = _Serving()
        if self.metrics_memory is not None and number <= BALANCE_SLOTS:
            serving.metrics_memory = (self.metrics_memory, number - 1)
        limit = 0
        if self.adj.max_requests:
            limit = self.adj.max_requests + random.randint(0, self.adj.max_requests_jitter)

        def configure(engine: Any) -> None:
            if access_log_is_file(self.adj.access_log) and hasattr(signal, "SIGUSR1"):
                # Ignored until now, so that one sent before this point is
                # not fatal (the supervisor forwards logrotate's SIGUSR1).
                signal.signal(signal.SIGUSR1, lambda signum, frame: engine.reopen_access_log())
            engine.heartbeat(beats, HEARTBEAT_INTERVAL)
            engine.drain_grace(DRAIN_GRACE)
            if number <= BALANCE_SLOTS:
                engine.balance(self.counts, number - 1)
            if limit:
                threading.Thread(
                    target=_watch_requests,
                    args=(engine, limit, beats),
                    name="waitress-max-requests",
                    daemon=True,
                ).start()

        serving.configure_engine = configure
        try:
            serving.run(application, servers, self.adj, lambda: None)
        except (SystemExit, KeyboardInterrupt):
            pass
        except (ValueError, OSError) as exc:
            # The engine refused the options (a certificate or key file that
            # no longer loads): one line for the supervisor, which abandons
            # a reload that cannot start rather than retrying it forever.
            _report(beats, _ERROR + str(exc).encode("utf-8", "replace"))
            return START_ERROR
        return 0


def _report(fd: int, data: bytes) -> None:
    os.set_blocking(fd, True)
    try:
        while data:
            data = data[os.write(fd, data) :]
    except OSError:
        pass


def _drain_once(number: int, frame: Any) -> None:
    # systemd (KillMode=control-group) and the supervisor may both send
    # SIGTERM; a second one would cut the engine's drain short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(0)


def _watch_requests(engine: Any, limit: int, beats: int) -> None:
    """Tell the supervisor once this worker has served ``limit`` requests."""
    while engine.served() < limit:
        time.sleep(0.1)
    while True:
        try:
            os.write(beats, _RETIRE)
            return
        except BlockingIOError:
            time.sleep(0.1)
        except OSError:
            return


def _resident_mib(pid: int) -> Optional[int]:
    """Resident memory of a process in MiB (Linux's /proc), or None."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") // (1024 * 1024)


def _capital(worker: _Worker) -> str:
    text = str(worker)
    return text[0].upper() + text[1:]


def supervise(
    application: Any,
    socket_map: Dict[int, Any],
    adj: Any,
    close_sockets: Callable[[], None],
) -> None:
    """Serve ``socket_map``'s listening sockets with ``adj.workers`` worker
    processes until SIGTERM or SIGINT; then close the sockets."""
    if threading.current_thread() is not threading.main_thread():
        close_sockets()
        raise RuntimeError(
            "workers > 1 and max_requests need the main thread: the supervisor "
            "handles SIGTERM, SIGINT, SIGHUP, SIGTTIN, SIGTTOU and SIGCHLD"
        )
    try:
        Supervisor(application, socket_map, adj).run()
    finally:
        close_sockets()

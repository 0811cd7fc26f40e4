"""llama.cpp's own figures for the local chat model, beside frontdesk's `chat` bench.

The same GGUF, the same two prompts rendered with the model's own chat template as a system
and a user message, the same settings (threads = cores up to 8, context 2048, batch 512, greedy with frontdesk's default
repetition penalty of 1.1 over the last 64 tokens, at most 128 new tokens, 5 runs, medians), measured through llama-cpp-python (built here from PyPI's
source release by scripts/ensure-bench-python.sh):
  TTFT           request start to the first streamed token
  prefill tok/s  prompt tokens / TTFT
  decode tok/s   (tokens - 1) / (last token time - first token time)

Run: .venv-bench/bin/python crates/local/benches/llama_cpp_reference.py [MODEL.gguf] [--json]
[--decode-like FILE] (`make bench-local` runs it after the Rust bench). The model defaults to
$FRONTDESK_MODELS_DIR (or ./models)/smollm2-135m/model.gguf. With --decode-like, the figures
the Rust bench wrote (BENCH_CHAT_JSON) set how many tokens each prompt decodes here: the two
answers differ in length, and decoding slows as the context grows, so decode rates compare
only over the same number of tokens.
"""
import json
import os
import statistics
import sys
import time

from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

SYSTEM = "You are a helpful assistant."
SHORT = "Explain in two sentences why the sky is blue, for a curious child of eight."
LONG = "Summarise this support ticket in one sentence.\n" + (
    "The customer ordered a blue kettle on Monday, paid by card, and received a red toaster "
    "on Thursday. They want the kettle. " * 18
)


def model_path(args):
    given = [a for a in args if not a.startswith("--")]
    if given:
        return given[0]
    models = os.environ.get("FRONTDESK_MODELS_DIR", "models")
    return os.path.join(models, "smollm2-135m", "model.gguf")


def decode_like(args):
    """Tokens to decode per prompt, from the Rust bench's figures (--decode-like FILE)."""
    if "--decode-like" not in args:
        return {}
    at = args.index("--decode-like")
    if at + 1 >= len(args):
        sys.exit("--decode-like needs the file the chat bench wrote (BENCH_CHAT_JSON)")
    with open(args[at + 1]) as f:
        figures = json.load(f)
    return {label: int(r["tokens_decoded"]) for label, r in figures.items()}


def measure(llm, formatter, text, max_tokens):
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]
    prompt = formatter(messages=messages).prompt
    prompt_tokens = len(llm.tokenize(prompt.encode(), add_bos=False, special=True))
    ttft, prefill, decode, decoded = [], [], [], 0
    for run in range(6):
        llm.reset()  # no prompt reuse between runs: every run prefills the whole prompt
        started = time.perf_counter()
        first = last = None
        tokens = 0
        for _chunk in llm.create_completion(
            prompt, max_tokens=max_tokens, temperature=0.0, repeat_penalty=1.1, stream=True
        ):
            now = time.perf_counter()
            if first is None:
                first = now
            last = now
            tokens += 1
        if run == 0:
            continue  # warm-up
        first_s = first - started
        ttft.append(first_s * 1000)
        prefill.append(prompt_tokens / first_s)
        decode.append(max(tokens - 1, 1) / max(last - first, 1e-6))
        decoded = tokens - 1  # the last chunk only carries the finish reason
    return {
        "prompt_tokens": prompt_tokens,
        "ttft_ms": statistics.median(ttft),
        "prefill_tok_s": statistics.median(prefill),
        "decode_tok_s": statistics.median(decode),
        "tokens_decoded": decoded,
    }


def main():
    args = sys.argv[1:]
    like = decode_like(args)
    if "--decode-like" in args:
        at = args.index("--decode-like")
        del args[at : at + 2]
    path = model_path(args)
    if not os.path.exists(path):
        sys.exit(f"no model at {path}: run `frontdesk models fetch`")
    threads = min(os.cpu_count() or 2, 8)
    llm = Llama(
        model_path=path,
        n_ctx=2048,
        n_batch=512,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    template = llm.metadata["tokenizer.chat_template"]
    eos = llm.detokenize([llm.token_eos()], special=True).decode()
    bos = llm.detokenize([llm.token_bos()], special=True).decode()
    formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
    results = {
        label: measure(llm, formatter, text, like.get(label, 128))
        for label, text in [("short", SHORT), ("long", LONG)]
    }
    if "--json" in args:
        print(json.dumps(results))
        return
    same = " (each prompt decodes as many tokens as frontdesk did)" if like else ""
    print(f"llama.cpp (llama-cpp-python), {threads} threads{same}")
    print("| prompt | prompt tokens | TTFT ms | prefill tok/s | decode tok/s | tokens decoded |")
    print("|---|---|---|---|---|---|")
    for label, r in results.items():
        print(
            f"| {label} | {r['prompt_tokens']} | {r['ttft_ms']:.1f} | {r['prefill_tok_s']:.0f} "
            f"| {r['decode_tok_s']:.0f} | {r['tokens_decoded']} |"
        )


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Drive a running `benchkeep simulate` with the official `openai` and `ollama` Python
clients and check that every response parses and that token counts and durations are
consistent. Exits 1 on any mismatch.

usage: check.py --base-url http://127.0.0.1:PORT --profile vllm|ollama [--load-ms MS]
"""

import argparse
import concurrent.futures
import json
import sys
import traceback
import urllib.request

import ollama
import openai

PROMPT = "tell me a short story about a lighthouse keeper"
PROMPT_WORDS = len(PROMPT.split())

failures = []
passed = 0


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def case(fn):
    """Run one named check; record a failure instead of stopping."""
    global passed
    name = fn.__name__
    try:
        fn()
        passed += 1
        print(f"  ok    {name}")
    except Exception as e:  # noqa: BLE001 - report every kind of failure
        failures.append(f"{PROFILE}: {name}: {e!r}")
        print(f"  FAIL  {name}: {e!r}")
        traceback.print_exc(limit=3)
    return fn


def chunks_ok(n, tokens):
    """vLLM sends one content chunk per token. A real Ollama 0.24 sends fewer chunks than
    tokens on chat streams (11 chunks for 16 tokens, its recordings show), so there every
    token is in some chunk, and no chunk is empty."""
    return n == tokens if PROFILE == "vllm" else 0 < n <= tokens


def words(text):
    return len(text.split())


def get_json(path):
    with urllib.request.urlopen(BASE + path, timeout=30) as r:
        return json.loads(r.read())


def openai_checks():
    client = openai.OpenAI(base_url=BASE + "/v1", api_key="unused", max_retries=0, timeout=60)
    messages = [{"role": "user", "content": PROMPT}]

    @case
    def openai_models():
        models = client.models.list()
        ids = [m.id for m in models.data]
        check(len(ids) == 1, f"one model: {ids}")
        if PROFILE == "vllm":
            check(ids[0] == MODEL, ids)
            extra = models.data[0].model_extra or {}
            check(isinstance(extra.get("max_model_len"), int), f"max_model_len: {extra}")
        else:
            check(ids[0].startswith(MODEL), ids)

    @case
    def openai_chat():
        r = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=9)
        c = r.choices[0]
        check(r.object == "chat.completion", r.object)
        check(c.message.role == "assistant", c.message.role)
        check(words(c.message.content) == 9, c.message.content)
        check(r.usage.completion_tokens == 9, r.usage)
        check(r.usage.prompt_tokens == PROMPT_WORDS, r.usage)
        check(r.usage.total_tokens == PROMPT_WORDS + 9, r.usage)
        check(c.finish_reason == "length", c.finish_reason)
        if PROFILE == "ollama":
            check(r.system_fingerprint == "fp_ollama", r.system_fingerprint)

    def chat_stream(max_tokens, include_usage):
        kwargs = {"stream_options": {"include_usage": True}} if include_usage else {}
        stream = client.chat.completions.create(
            model=MODEL, messages=messages, max_tokens=max_tokens, stream=True, **kwargs
        )
        chunks = list(stream)
        check(len(chunks) > 0, "no chunks")
        content = [ch for ch in chunks if ch.choices and ch.choices[0].delta.content]
        finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
        usage = [ch for ch in chunks if ch.usage is not None]
        check(len(set(ch.id for ch in chunks)) == 1, "one id per stream")
        check(chunks[0].choices[0].delta.role == "assistant", chunks[0])
        if PROFILE == "vllm":
            check(chunks[0].choices[0].delta.content == "", "vLLM role chunk has no text")
            check(content[-1].choices[0].finish_reason is not None, "finish on last content chunk")
        else:
            check(bool(chunks[0].choices[0].delta.content), "Ollama: role with first text")
            check(all(ch.system_fingerprint == "fp_ollama" for ch in chunks), "fp_ollama")
        check(len(finishes) == 1, f"one finish_reason: {finishes}")
        return chunks, content, finishes, usage

    @case
    def openai_chat_stream_usage():
        chunks, content, finishes, usage = chat_stream(12, True)
        check(chunks_ok(len(content), 12), f"{len(content)} content chunks")
        check(len(usage) == 1 and usage[0] is chunks[-1], "one usage chunk, last")
        check(usage[0].choices == [], usage[0].choices)
        check(usage[0].usage.completion_tokens == 12, usage[0].usage)
        check(words("".join(c.choices[0].delta.content for c in content)) == 12, "12 words")
        check(usage[0].usage.prompt_tokens == PROMPT_WORDS, usage[0].usage)
        check(finishes == ["length"], finishes)

    @case
    def openai_chat_stream_no_usage():
        _, content, _, usage = chat_stream(5, False)
        check(chunks_ok(len(content), 5), len(content))
        check(usage == [], "no usage chunk unless asked")

    @case
    def openai_chat_stream_default_length():
        _, content, finishes, usage = chat_stream(None, True)
        check(len(content) > 0 and chunks_ok(len(content), usage[0].usage.completion_tokens), usage[0].usage)
        check(finishes[0] in ("stop", "length"), finishes)

    @case
    def openai_completions():
        r = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=7)
        check(r.object == "text_completion", r.object)
        check(words(r.choices[0].text) == 7, r.choices[0].text)
        check(r.usage.completion_tokens == 7 and r.usage.prompt_tokens == PROMPT_WORDS, r.usage)

    @case
    def openai_completions_stream_usage():
        chunks = list(
            client.completions.create(
                model=MODEL, prompt=PROMPT, max_tokens=6, stream=True,
                stream_options={"include_usage": True},
            )
        )
        text = [ch for ch in chunks if ch.choices and ch.choices[0].text]
        final = [ch for ch in chunks if not ch.choices]
        check(len(text) == 6, len(text))
        check(len(final) == 1 and final[0].usage.completion_tokens == 6, final)

    @case
    def openai_concurrent_streams():
        def one(i):
            s = client.chat.completions.create(
                model=MODEL, messages=messages, max_tokens=10 + i, stream=True,
                stream_options={"include_usage": True},
            )
            chunks = list(s)
            n = sum(1 for ch in chunks if ch.choices and ch.choices[0].delta.content)
            return n, chunks[-1].usage.completion_tokens
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            results = list(ex.map(one, range(8)))
        for i, (n, usage) in enumerate(results):
            check(usage == 10 + i and chunks_ok(n, usage), (i, n, usage))

    @case
    def openai_unknown_model_is_404():
        try:
            client.chat.completions.create(model="no-such-model", messages=messages, max_tokens=2)
        except openai.NotFoundError as e:
            check(e.status_code == 404, e.status_code)
            return
        raise AssertionError("no error")

    if PROFILE == "vllm":
        @case
        def openai_vllm_extras():
            r = client.chat.completions.create(
                model=MODEL, messages=messages, max_tokens=50, max_completion_tokens=4,
                extra_body={"ignore_eos": True, "min_tokens": 2},
            )
            check(r.usage.completion_tokens == 4, r.usage)

        @case
        def openai_vllm_context_limit_is_400():
            try:
                client.chat.completions.create(model=MODEL, messages=messages, max_tokens=10**6)
            except openai.BadRequestError as e:
                check(e.status_code == 400, e.status_code)
                body = e.body if isinstance(e.body, dict) else {}
                check("max_model_len" in str(e) or "context length" in str(e), str(e))
                check(body.get("type") == "BadRequestError" or "BadRequestError" in str(e), body)
                return
            raise AssertionError("no error")


def ollama_checks():
    client = ollama.Client(host=BASE, timeout=60)
    name = MODEL

    def durations(r, n):
        check(r.done is True, r.done)
        check(r.eval_count == n, f"eval_count {r.eval_count} != {n}")
        check(r.prompt_eval_count == PROMPT_WORDS, f"prompt_eval_count {r.prompt_eval_count}")
        load = r.load_duration or 0
        for k in ("total_duration", "prompt_eval_duration", "eval_duration"):
            check((getattr(r, k) or 0) > 0, f"{k} = {getattr(r, k)}")
        check(
            r.total_duration >= load + r.prompt_eval_duration + r.eval_duration,
            f"total {r.total_duration} < load {load} + prompt {r.prompt_eval_duration} + eval {r.eval_duration}",
        )
        return load

    if PROFILE == "ollama":
        @case
        def ollama_first_request_loads():
            r = client.generate(model=name, prompt=PROMPT, options={"num_predict": 3})
            load = durations(r, 3)
            check(load >= LOAD_MS * (1 - JITTER) * 1_000_000, f"load_duration {load}")
            r = client.generate(model=name, prompt=PROMPT, options={"num_predict": 3})
            # A real Ollama 0.24 reports load_duration in every final object: 1-3 ms when the
            # model is already loaded.
            check(r.load_duration < LOAD_MS * 1_000_000 / 10, f"second load_duration {r.load_duration}")

    @case
    def ollama_chat():
        r = client.chat(model=name, messages=[{"role": "user", "content": PROMPT}],
                        options={"num_predict": 8})
        check(r.message.role == "assistant", r.message.role)
        check(words(r.message.content) == 8, r.message.content)
        check(r.done_reason == "length", r.done_reason)
        durations(r, 8)

    @case
    def ollama_chat_stream():
        parts = list(client.chat(model=name, messages=[{"role": "user", "content": PROMPT}],
                                 stream=True, options={"num_predict": 11}))
        final = parts[-1]
        content = [p for p in parts if p.message.content]
        check(all(not p.done for p in parts[:-1]), "only the last part is done")
        check(chunks_ok(len(content), 11), len(content))
        check(words("".join(p.message.content for p in content)) == 11, "11 words")
        durations(final, 11)

    @case
    def ollama_generate():
        r = client.generate(model=name, prompt=PROMPT, options={"num_predict": 5})
        check(words(r.response) == 5, r.response)
        durations(r, 5)

    @case
    def ollama_generate_stream():
        parts = list(client.generate(model=name + ":latest", prompt=PROMPT, stream=True,
                                     options={"num_predict": 6}))
        text = [p for p in parts if p.response]
        check(len(text) == 6, len(text))
        durations(parts[-1], 6)

    @case
    def ollama_unknown_model_is_404():
        try:
            client.chat(model="nope", messages=[{"role": "user", "content": "x"}])
        except ollama.ResponseError as e:
            check(e.status_code == 404, e.status_code)
            check("not found" in e.error, e.error)
            return
        raise AssertionError("no error")

    @case
    def ollama_info():
        tags = client.list()
        check(tags.models[0].model.startswith(name), tags)
        show = client.show(name)
        check(show.details.family == "llama", show.details)
        ps = client.ps()
        check(ps.models and ps.models[0].context_length > 0, ps)
        check("version" in get_json("/api/version"), "version")


def main():
    global BASE, PROFILE, MODEL, LOAD_MS, JITTER
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--profile", choices=["vllm", "ollama"], required=True)
    ap.add_argument("--model")
    ap.add_argument("--load-ms", type=float, default=0)
    ap.add_argument("--jitter", type=float, default=0)
    a = ap.parse_args()
    BASE, PROFILE, LOAD_MS, JITTER = a.base_url.rstrip("/"), a.profile, a.load_ms, a.jitter
    MODEL = a.model or ("sim-model" if PROFILE == "vllm" else "llama3.2")
    print(f"profile {PROFILE} at {BASE} (openai {openai.__version__}, ollama client)")
    if PROFILE == "ollama":
        ollama_checks()  # first, so the first request is the one that loads the model
        openai_checks()
    else:
        openai_checks()
        ollama_checks()
    print(f"profile {PROFILE}: {passed} passed, {len(failures)} failed")
    for f in failures:
        print("FAILED:", f, file=sys.stderr)
    return 1 if failures else 0


BASE = PROFILE = MODEL = ""
LOAD_MS = JITTER = 0.0

if __name__ == "__main__":
    sys.exit(main())

"""`seq2seq-serve`'s API on a tiny model trained on real Multi30k.

The answers equal `seq2seq-translate`'s; concurrent clients each get their own
answers; every limit and every hostile input gets a 4xx naming the problem (never a
5xx); the API key guards all but /health; SIGTERM lets requests in flight finish.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from seq2seq.commands.translate import main as translate_main
from seq2seq.serving.app import create_app
from seq2seq.serving.settings import checked_settings
from seq2seq.translation.translator import Translator

LIMITS = {"max_texts": 8, "max_chars": 200, "max_body_bytes": 4000, "timeout_s": 60}


@pytest.fixture(scope="module")
def sentences(data_root: Path) -> list[str]:
    with gzip.open(data_root / "multi30k" / "test_2016_flickr.en.gz", "rt", encoding="utf-8") as f:
        return f.read().splitlines()[:50]


@pytest.fixture(scope="module")
def translator(attention_run: Path) -> Translator:
    return Translator.from_pretrained(attention_run)


def make_client(translator: Translator, **settings) -> TestClient:
    data = {"models": {"tiny": {"checkpoint": "unused"}}, "limits": LIMITS, **settings}
    return TestClient(create_app(checked_settings(data, "test"), {"tiny": translator}))


@pytest.fixture(scope="module")
def client(translator: Translator):
    with make_client(translator) as client:
        yield client


def test_answers_equal_the_command_lines(client, attention_run, sentences, tmp_path, capsys):
    (tmp_path / "in.en").write_text("\n".join(sentences[:8]) + "\n", encoding="utf-8")
    for flags, body in (
        ([], {}),
        (["--search", "beam", "--beam-size", "4"], {"search": "beam", "beam_size": 4}),
    ):
        with pytest.raises(SystemExit):
            translate_main(
                ["--checkpoint", str(attention_run), "-i", str(tmp_path / "in.en")] + flags
            )
        expected = capsys.readouterr().out.splitlines()
        answer = client.post("/v1/translate", json={"texts": sentences[:8], **body})
        assert answer.status_code == 200
        assert answer.json()["model"] == "tiny"
        assert [t["text"] for t in answer.json()["translations"]] == expected


def test_nbest_and_alignment_appear_only_when_asked(client, sentences):
    plain = client.post("/v1/translate", json={"texts": sentences[:2]}).json()["translations"]
    assert all(set(t) == {"text", "score"} for t in plain)
    body = {"texts": sentences[:2], "search": "beam", "beam_size": 4, "nbest": 3, "alignment": True}
    rich = client.post("/v1/translate", json=body).json()["translations"]
    for translation in rich:
        assert (
            len(translation["nbest"]) == 3
            and translation["nbest"][0]["text"] == translation["text"]
        )
        assert all(len(pair) == 2 for pair in translation["alignment"])


HOSTILE = [
    (b"{not json", 400, "not valid JSON"),
    (b'{"texts": ["caf\xc3"]}', 400, "UTF-8"),
    (b"[1, 2]", 400, "must be a JSON object"),
    (b'{"texts": "A dog."}', 422, "texts"),
    (b'{"texts": [1]}', 422, "texts[0]"),
    (b'{"texts": ["A dog."], "beam_size": "5", "search": "beam"}', 422, "beam_size"),
    (b'{"texts": ["A dog."], "colour": "red"}', 422, "colour"),
    (b'{"model": "tiny"}', 422, "texts"),
    (b'{"texts": []}', 422, "texts is empty"),
    (b'{"texts": ["A dog.", ""]}', 422, "texts[1] is empty"),
    (b'{"texts": ["A \\u0000dog."]}', 422, "U+0000"),
    (b'{"texts": ["A\\ndog."]}', 422, "U+000A"),
    (b'{"texts": ["A dog."], "search": "magic"}', 422, "search"),
    (b'{"texts": ["A dog."], "nbest": 2}', 422, "nbest need search 'beam'"),
    (b'{"texts": ["A dog."], "search": "beam", "beam_size": 2, "nbest": 3}', 422, "cannot exceed"),
    (b'{"texts": ["A dog."], "model": "other"}', 404, "no model named 'other'"),
    (b'{"texts": ["' + b"x" * 201 + b'"]}', 413, "201 characters; at most 200"),
    (b'{"texts": [' + b",".join([b'"A dog."'] * 9) + b"]}", 413, "at most 8 per request"),
    (b'{"texts": ["A dog."], "search": "beam", "beam_size": 99}', 413, "beam_size is 99"),
    (b'{"texts": ["' + b"x" * 5000 + b'"]}', 413, "more than 4000 bytes"),
]


@pytest.mark.parametrize(("body", "status", "message"), HOSTILE, ids=[m for _, _, m in HOSTILE])
def test_hostile_input_gets_a_4xx_naming_the_problem(client, body, status, message):
    answer = client.post(
        "/v1/translate", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["status"] == status and message in error["message"]
    # and the server still answers the next request
    assert client.post("/v1/translate", json={"texts": ["A dog."]}).status_code == 200


def test_a_chunked_body_over_the_limit_is_refused(client):
    def chunks():
        yield b'{"texts": ["'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"]}'

    answer = client.post(
        "/v1/translate", content=chunks(), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413


def test_models_health_metrics_and_docs(client):
    (model,) = client.get("/v1/models").json()
    assert model["name"] == "tiny" and model["source_language"] == "en"
    assert model["target_language"] == "de" and model["defaults"]["search"] == "greedy"
    assert client.get("/health").json() == {"status": "ok", "models": ["tiny"]}
    metrics = client.get("/metrics").text
    for name in (
        "seq2seq_requests_total",
        "seq2seq_request_errors_total",
        "seq2seq_request_latency_seconds_bucket",
        "seq2seq_batch_sentences_bucket",
        "seq2seq_sentences_total",
        "seq2seq_sentences_per_second",
    ):
        assert name in metrics
    assert client.get("/docs").status_code == 200
    assert "/v1/translate" in client.get("/openapi.json").json()["paths"]


def test_the_api_key_guards_everything_but_health(translator):
    with make_client(translator, api_key="s3cret") as client:
        body = {"texts": ["A dog."]}
        assert client.get("/health").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "s3cre"}):
            answer = client.post("/v1/translate", json=body, headers=headers)
            assert answer.status_code == 401 and "API key" in answer.json()["error"]["message"]
            assert client.get("/v1/models", headers=headers).status_code == 401
            assert client.get("/metrics", headers=headers).status_code == 401
            assert client.get("/docs", headers=headers).status_code == 401
        assert (
            client.post(
                "/v1/translate", json=body, headers={"Authorization": "Bearer s3cret"}
            ).status_code
            == 200
        )
        assert client.get("/v1/models", headers={"X-API-Key": "s3cret"}).status_code == 200


def test_cors_is_off_unless_configured(translator):
    preflight = {"Origin": "https://example.org", "Access-Control-Request-Method": "POST"}
    with make_client(translator) as client:
        answer = client.options("/v1/translate", headers=preflight)
        assert "access-control-allow-origin" not in answer.headers
    with make_client(translator, cors_origins=["https://example.org"]) as client:
        answer = client.options("/v1/translate", headers=preflight)
        assert answer.headers["access-control-allow-origin"] == "https://example.org"


# ------------------------------------------------------------------ a real server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(attention_run: Path, tmp_path_factory: pytest.TempPathFactory):
    """`seq2seq-serve` in its own process: (base URL, process). In fp32, as `translator`
    (a subprocess does not see conftest's no_native_bf16)."""
    port = free_port()
    config = tmp_path_factory.mktemp("serve") / "serve.yaml"
    model = {"checkpoint": str(attention_run), "precision": "fp32"}
    config.write_text(json.dumps({"models": {"tiny": model}}), encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "seq2seq.commands.serve", "--config", str(config)]
        + ["--port", str(port), "--max-wait-ms", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "SEQ2SEQ_API_KEY": ""},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail(f"the server did not start: {process.stdout.read()}")
    yield url, process
    if process.poll() is None:
        process.kill()


def metric(url: str, name: str) -> float:
    """A metric's value from /metrics (the first sample whose line starts with `name`)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def in_flight(url: str) -> float:
    return metric(url, "seq2seq_translations_in_flight")


def test_concurrent_clients_get_their_own_answers(server, translator, sentences):
    url, _ = server
    expected = {s: t.text for s, t in zip(sentences, translator.translate(sentences), strict=True)}

    def ask(sentence: str) -> tuple[str, str]:
        with httpx.Client(timeout=60) as http:
            answer = http.post(f"{url}/v1/translate", json={"texts": [sentence]})
        assert answer.status_code == 200, answer.text
        return sentence, answer.json()["translations"][0]["text"]

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(ask, sentences))
    assert len(answers) == 50
    # Batched with other requests, a sentence's float rounding changes, so where two of
    # this tiny model's hypotheses tie to 1e-4 either may win; any other answer (another
    # request's) scores far lower for this sentence.
    differ = [(sentence, text) for sentence, text in answers if text != expected[sentence]]
    assert len(differ) <= 5, differ
    for sentence, text in differ:
        got, best = translator.score([sentence, sentence], [text, expected[sentence]])
        assert got.logprob == pytest.approx(best.logprob, rel=1e-4), (sentence, text)
    batches = metric(url, 'seq2seq_batch_sentences_count{model="tiny"}')
    assert batches < 50, "no two requests were decoded together"


def test_sigterm_lets_requests_in_flight_finish(server, sentences):
    url, process = server
    results: list[int] = []

    def slow_request() -> None:
        # Long enough that none ends before all four are in flight (decoding got faster).
        body = {"texts": sentences, "search": "beam", "beam_size": 6}
        with httpx.Client(timeout=120) as http:
            results.append(http.post(f"{url}/v1/translate", json=body).status_code)

    threads = [threading.Thread(target=slow_request) for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while in_flight(url) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert in_flight(url) == 4
    process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(timeout=120)
    assert results == [200, 200, 200, 200]
    assert process.wait(timeout=60) == 0


def test_settings_mistakes_are_one_line_before_anything_loads(tmp_path, capsys):
    from seq2seq.commands.serve import main as serve_main

    config = tmp_path / "serve.yaml"
    config.write_text(
        "models:\n  en-de: {checkpoint: nowhere, beam_size: 0}\nlimits: {max_txts: 3}\n",
        encoding="utf-8",
    )
    with pytest.raises(SystemExit) as done:
        serve_main(["--config", str(config)])
    err = capsys.readouterr().err
    assert done.value.code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "models.en-de.beam_size" in err and "limits.max_txts" in err
    with pytest.raises(SystemExit) as done:
        serve_main(["--model", f"en-de={tmp_path / 'missing'}"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "missing" in err and "Traceback" not in err

// The translation page: pick a model and a search, translate the lines typed, and for a
// single sentence draw its attention (target tokens x source tokens). No framework.
"use strict";

const $ = (id) => document.getElementById(id);
let models = [];

function headers() {
  const found = { "Content-Type": "application/json" };
  const key = $("key").value.trim();
  if (key) found.Authorization = "Bearer " + key;
  return found;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

// GET or POST the API; the parsed JSON, or an Error carrying the API's own message.
async function call(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: headers(),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (problem) {
    throw new Error("The server could not be reached: " + problem.message);
  }
  const data = await response.json().catch(() => null);
  if (response.status === 401) $("key-row").hidden = false;
  if (!response.ok) {
    const message = data && data.error ? data.error.message : response.statusText;
    throw new Error(`Error ${response.status}: ${message}`);
  }
  return data;
}

async function loadModels() {
  try {
    models = await call("GET", "/v1/models");
  } catch (problem) {
    showError(problem.message);
    return;
  }
  showError("");
  const picker = $("model");
  picker.replaceChildren(
    ...models.map((m) => {
      const pair = m.source_language && m.target_language
        ? ` (${m.source_language} → ${m.target_language})` : "";
      return new Option(m.name + pair, m.name);
    })
  );
  modelChosen();
}

function modelChosen() {
  const model = models.find((m) => m.name === $("model").value);
  if (!model) return;
  const search = model.defaults.search;
  $("search").value = search === "beam" ? "beam" : "greedy";
  $("beam-size").value = model.defaults.beam_size || 5;
  searchChosen();
}

function searchChosen() {
  $("beam-row").hidden = $("search").value !== "beam";
}

async function translate(event) {
  event.preventDefault();
  const texts = $("text").value.split("\n").map((l) => l.trim()).filter((l) => l);
  if (!texts.length) return showError("Type a sentence to translate, one per line.");
  if (!models.length) await loadModels(); // e.g. the API key was just typed
  if (!models.length) return;
  const model = models.find((m) => m.name === $("model").value);
  const body = { texts, search: $("search").value };
  if (model) body.model = model.name;
  if (body.search === "beam") body.beam_size = Number($("beam-size").value);
  const single = texts.length === 1 && (!model || model.attention);
  if (single) body.alignment = body.attention = true;

  $("translate").disabled = true;
  $("form").setAttribute("aria-busy", "true");
  $("results").replaceChildren();
  $("attention").hidden = true;
  showError("");
  try {
    const answer = await call("POST", "/v1/translate", body);
    showResults(texts, answer.translations);
    if (single) drawHeatmap(answer.translations[0]);
  } catch (problem) {
    showError(problem.message);
  } finally {
    $("translate").disabled = false;
    $("form").removeAttribute("aria-busy");
  }
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showResults(texts, translations) {
  $("results").replaceChildren(
    ...translations.map((t, i) => {
      const item = element("li");
      if (texts.length > 1) item.append(element("span", "source", texts[i]));
      item.append(
        element("span", "translation", t.text),
        element("span", "score", "score " + t.score.toFixed(3))
      );
      return item;
    })
  );
}

// One row per target token, one column per source token (both end with </s>); a cell's
// fill is its weight over the sentence's largest, outlined where the alignment links.
function drawHeatmap(t) {
  if (!t.attention || !t.attention.length) return;
  const map = $("heatmap");
  const largest = Math.max(...t.attention.flat(), 1e-6);
  const aligned = new Set((t.alignment || []).map(([s, tgt]) => `${tgt},${s}`));
  map.style.gridTemplateColumns = `max-content repeat(${t.source_tokens.length}, var(--cell))`;
  const cells = [element("div", "heat-corner")];
  for (const token of t.source_tokens) cells.push(element("div", "heat-col", token));
  t.attention.forEach((row, r) => {
    cells.push(element("div", "heat-row", t.target_tokens[r]));
    row.forEach((weight, s) => {
      const cell = element("div", "heat-cell");
      cell.style.setProperty("--w", (weight / largest).toFixed(3));
      cell.title = `${t.target_tokens[r]} ← ${t.source_tokens[s]}: ${weight.toFixed(3)}`;
      if (aligned.has(`${r},${s}`)) cell.classList.add("aligned");
      cells.push(cell);
    });
  });
  map.replaceChildren(...cells);
  $("heat-max").textContent = largest.toFixed(3);
  $("attention").hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  $("form").addEventListener("submit", translate);
  $("model").addEventListener("change", modelChosen);
  $("search").addEventListener("change", searchChosen);
  $("key").value = sessionStorage.getItem("seq2seq-key") || "";
  $("key").addEventListener("change", () => {
    sessionStorage.setItem("seq2seq-key", $("key").value.trim());
    loadModels();
  });
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("form").requestSubmit();
  });
  loadModels();
});

#include "ganlite/serve/web_page.h"

namespace ganlite::serve {

namespace {

// One string, so the executable needs no files beside it. Each model runs after the other, so
// each latency is that model's alone.
const char* const kComparisonPage = R"PAGE(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ganlite serve: teacher vs student</title>
<style>
body { font-family: sans-serif; margin: 16px; background: #fafafa; color: #222; }
#drop { border: 2px dashed #888; padding: 14px; width: 820px; text-align: center; background: #fff; }
#drop.over { background: #e8f0ff; }
.panels { display: flex; gap: 16px; margin-top: 16px; }
figure { margin: 0; width: 260px; }
figure img { width: 256px; height: 256px; object-fit: contain; image-rendering: pixelated;
             background: #fff; border: 2px solid #ccc; display: block; }
figcaption { font-size: 14px; margin-top: 4px; min-height: 2.4em; }
#models { font-size: 13px; color: #555; margin: 6px 0; }
#result { font-size: 11px; color: #777; white-space: pre-wrap; width: 820px; }
</style></head>
<body data-state="idle">
<h2>ganlite serve: teacher and student side by side</h2>
<div id="models">loading model list...</div>
<div id="drop">Drop a PNG or JPEG here, or <input type="file" id="file" accept="image/png,image/jpeg"></div>
<div class="panels">
  <figure id="input"><img alt="input"><figcaption>input</figcaption></figure>
  <figure id="teacher"><img alt="teacher output"><figcaption>teacher</figcaption></figure>
  <figure id="student"><img alt="student output"><figcaption>student</figcaption></figure>
</div>
<pre id="result"></pre>
<script>
"use strict";
let models = {};

function formatMacs(m) {
  if (!(m > 0)) return "?";
  const units = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [scale, unit] of units) if (m >= scale) return (m / scale).toFixed(2) + unit;
  return String(m);
}

function showImage(img, blob) {
  return new Promise((resolve, reject) => {
    img.onload = () => resolve({ width: img.naturalWidth, height: img.naturalHeight });
    img.onerror = () => reject(new Error("the browser cannot show this image"));
    img.src = URL.createObjectURL(blob);
  });
}

function panelRect(id) {
  const r = document.querySelector("#" + id + " img").getBoundingClientRect();
  const s = window.devicePixelRatio || 1;
  return { x: Math.round(r.left * s), y: Math.round(r.top * s), width: Math.round(r.width * s), height: Math.round(r.height * s) };
}

async function runModel(name, blob) {
  const caption = document.querySelector("#" + name + " figcaption");
  if (!models[name]) {
    caption.textContent = name + ": not loaded (start ganlite serve with --" + name + ")";
    return { model: name, loaded: false };
  }
  caption.textContent = name + ": running...";
  const response = await fetch("/v1/translate?model=" + name, {
    method: "POST", body: blob, headers: { "Content-Type": blob.type || "application/octet-stream" } });
  if (!response.ok) {
    const message = await response.text();
    caption.textContent = name + ": error " + response.status + ": " + message;
    return { model: name, status: response.status, error: message };
  }
  const latency = parseFloat(response.headers.get("X-Ganlite-Latency-Ms"));
  const macs = parseInt(response.headers.get("X-Ganlite-MACs"), 10);
  const shown = await showImage(document.querySelector("#" + name + " img"), await response.blob());
  caption.textContent = name + ": " + latency.toFixed(1) + " ms, " + formatMacs(macs) + " MACs";
  return { model: name, status: 200, latency_ms: latency, macs: macs, width: shown.width, height: shown.height,
           rect: panelRect(name) };
}

// The one path every image takes: a dropped file, a chosen file, or the self-test's canvas.
async function handleImage(blob) {
  document.body.dataset.state = "running";
  const result = document.getElementById("result");
  try {
    await showImage(document.querySelector("#input img"), blob);
    const outputs = [];
    for (const name of ["teacher", "student"]) outputs.push(await runModel(name, blob));
    result.textContent = JSON.stringify({ input: panelRect("input"), outputs: outputs });
    document.body.dataset.state = "done";
  } catch (e) {
    result.textContent = JSON.stringify({ error: String(e) });
    document.body.dataset.state = "error";
  }
}

function sampleImage() {  // coloured shapes on a gradient, 128x128
  const canvas = document.createElement("canvas");
  canvas.width = 128; canvas.height = 128;
  const g = canvas.getContext("2d");
  const gradient = g.createLinearGradient(0, 0, 128, 128);
  gradient.addColorStop(0, "#203040"); gradient.addColorStop(1, "#e0d0a0");
  g.fillStyle = gradient; g.fillRect(0, 0, 128, 128);
  g.fillStyle = "#d03020"; g.beginPath(); g.arc(44, 48, 26, 0, 2 * Math.PI); g.fill();
  g.fillStyle = "#2050c0"; g.fillRect(70, 64, 44, 44);
  g.strokeStyle = "#ffffff"; g.lineWidth = 3; g.strokeRect(8, 90, 50, 28);
  return new Promise(resolve => canvas.toBlob(resolve, "image/png"));
}

async function start() {
  try {
    const health = await (await fetch("/healthz")).json();
    models = health.models || {};
    document.getElementById("models").textContent = Object.entries(models)
      .map(([name, m]) => name + ": " + m.arch + ", " + (m.params / 1e6).toFixed(2) + "M params").join("; ") +
      " (" + health.precision + ")";
  } catch (e) {
    document.getElementById("models").textContent = "cannot read /healthz: " + e;
  }
  const drop = document.getElementById("drop");
  drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", e => {
    e.preventDefault(); drop.classList.remove("over");
    if (e.dataTransfer.files.length) handleImage(e.dataTransfer.files[0]);
  });
  document.getElementById("file").addEventListener("change", e => {
    if (e.target.files.length) handleImage(e.target.files[0]);
  });
  if (new URLSearchParams(location.search).get("selftest") === "1") handleImage(await sampleImage());
}
start();
</script>
</body></html>
)PAGE";

}  // namespace

const std::string& comparison_page_html() {
  static const std::string page = kComparisonPage;
  return page;
}

}  // namespace ganlite::serve

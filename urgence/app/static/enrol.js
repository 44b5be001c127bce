// Enrolment: record a speaker saying each keyword N times; each take is posted as a 16 kHz
// WAV to /api/enrol/<speaker>/<keyword> and saved as recordings/<speaker>/<keyword>/<n>.wav.
import { startCapture, wavBlob } from "/static/capture.js";

const $ = (id) => document.getElementById(id);
const SPEAKER = /^[a-z0-9][a-z0-9_-]{0,39}$/;
let vocabulary = null;
let speaker = null;
let counts = {};
let busy = false;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function showError(message) {
  $("erreur").textContent = message;
  $("erreur").hidden = !message;
}

function wanted() {
  return Math.max(1, Math.min(20, Number($("prises").value) || 5));
}

function renderCards() {
  $("mots").replaceChildren(...Object.entries(vocabulary.keywords).map(([keyword, number]) => {
    const service = vocabulary.services[number];
    const card = document.createElement("div");
    card.className = "carte";
    card.style.borderLeftColor = service.colour;
    const done = counts[keyword] || 0;
    if (done >= wanted()) card.classList.add("complet");
    card.innerHTML = '<span class="mot-cle"></span><span class="service-nom"></span>' +
      '<span class="compte"></span><button type="button">Enregistrer une prise</button>';
    card.querySelector(".mot-cle").textContent = keyword;
    card.querySelector(".service-nom").textContent = service.label;
    card.querySelector(".compte").textContent = `${done} / ${wanted()} prises`;
    const button = card.querySelector("button");
    button.disabled = busy || !speaker;
    button.onclick = () => recordTakes([keyword]);
    return card;
  }));
  $("guide").disabled = busy || !speaker;
}

async function loadSpeaker(event) {
  event.preventDefault();
  showError("");
  const name = $("nom").value.trim();
  if (!SPEAKER.test(name)) {
    showError("Identifiant invalide : lettres minuscules, chiffres, « - » ou « _ » (40 au plus).");
    return;
  }
  const response = await fetch(`/api/enrol/${encodeURIComponent(name)}`);
  const body = await response.json();
  if (!response.ok) {
    showError(`Identifiant refusé par le serveur (${body.detail}).`);
    return;
  }
  speaker = name;
  counts = body.counts;
  renderCards();
}

async function recordOne(keyword) {
  const chunks = [];
  const capture = await startCapture((frame) => chunks.push(new Int16Array(frame)));
  $("consigne").textContent = `Dites « ${keyword} »`;
  await sleep(1000 * Math.max(1, Math.min(5, Number($("duree").value) || 2)));
  await capture.stop();
  $("consigne").textContent = "Envoi…";
  const form = new FormData();
  form.append("file", wavBlob(chunks), `${keyword}.wav`);
  const url = `/api/enrol/${encodeURIComponent(speaker)}/${encodeURIComponent(keyword)}`;
  const response = await fetch(url, { method: "POST", body: form });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || `erreur ${response.status}`);
  counts[keyword] = body.count;
}

// Records the missing takes of each keyword in turn (one take per click for a single keyword).
async function recordTakes(keywords) {
  if (busy) return;
  busy = true;
  showError("");
  renderCards();
  try {
    for (const keyword of keywords) {
      const missing = keywords.length === 1 ? 1 : wanted() - (counts[keyword] || 0);
      for (let i = 0; i < missing; i++) {
        $("consigne").textContent = "Préparez-vous…";
        await sleep(700);
        await recordOne(keyword);
        renderCards();
      }
    }
    $("consigne").textContent = "Merci, c'est enregistré.";
  } catch (error) {
    $("consigne").textContent = "";
    showError(`Enregistrement impossible : ${error.message}`);
  } finally {
    busy = false;
    renderCards();
  }
}

async function init() {
  vocabulary = await (await fetch("/api/vocabulary")).json();
  $("locuteur").onsubmit = loadSpeaker;
  $("prises").onchange = () => speaker && renderCards();
  $("guide").onclick = () => recordTakes(Object.keys(vocabulary.keywords));
  renderCards();
}

init();

// The dispatcher console: live call over /api/stream, dropped recordings to /api/triage,
// the suggested service, the keyword timeline and the call history (/api/calls).
import { startCapture } from "/static/capture.js";

const $ = (id) => document.getElementById(id);
const nombre = (x, digits = 1) =>
  x.toLocaleString("fr-FR", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const pourcent = (x) => `${Math.round(100 * x)} %`;
const MIN_TIMELINE_S = 20;
const STATUTS = { "en cours": "en cours", "terminé": "terminé", "interrompu": "interrompu" };
const SOURCES = { direct: "micro", enregistrement: "fichier" };

let services = {}; // "15" -> {name, label, colour}
let live = null; // {socket, capture, detections, audioS}
let selectedCall = null;

function showError(message) {
  $("erreur").textContent = message;
  $("erreur").hidden = !message;
}

function serviceOf(item) {
  const number = item.service ?? item.number;
  return { number, ...(services[number] || { name: "", label: number, colour: "#9aa3ad" }) };
}

// -- the suggested service ------------------------------------------------------------------
function renderTriage(triage, detections) {
  const box = $("service");
  if (!triage || !triage.service) {
    box.className = "service aucun";
    box.style.background = "";
    box.querySelector(".numero").textContent = "—";
    box.querySelector(".nom").textContent = detections && detections.length
      ? "indéterminé" : "en attente de mots-clés";
    $("confiance").textContent = "";
    $("classement").replaceChildren();
  } else {
    const chosen = serviceOf(triage);
    box.className = "service";
    box.style.background = chosen.colour;
    box.querySelector(".numero").textContent = chosen.number;
    box.querySelector(".nom").textContent = chosen.name;
    $("confiance").textContent = `Confiance : ${pourcent(triage.confidence ?? 0)}`;
    $("classement").replaceChildren(...(triage.services || []).map((item) => {
      const s = serviceOf(item);
      const score = item.confidence ?? item.score ?? item.probability ?? 0;
      const li = document.createElement("li");
      const label = document.createElement("span");
      label.textContent = s.label || `${s.number} ${s.name}`;
      const bar = document.createElement("span");
      bar.className = "barre";
      bar.style.background = s.colour;
      bar.style.width = `${Math.max(2, 100 * score)}%`;
      const value = document.createElement("span");
      value.textContent = pourcent(score);
      li.append(label, bar, value);
      return li;
    }));
  }
  renderReasons(triage, detections || []);
}

function renderReasons(triage, detections) {
  const list = $("motifs");
  if (!detections.length) {
    list.innerHTML = '<li class="vide">Aucun mot-clé détecté</li>';
    return;
  }
  const ordered = [...detections].sort((a, b) => a.start_s - b.start_s);
  list.replaceChildren(...ordered.map((d) => {
    const li = document.createElement("li");
    const s = serviceOf(d);
    li.innerHTML = `<span class="pastille"></span> à ${nombre(d.start_s)} s ` +
      `(score ${pourcent(d.score)}) → `;
    li.querySelector(".pastille").textContent = `« ${d.keyword} »`;
    li.querySelector(".pastille").style.background = s.colour;
    li.append(s.label || s.number);
    return li;
  }));
}

// -- the timeline ---------------------------------------------------------------------------
function renderTimeline(detections, durationS) {
  const span = Math.max(MIN_TIMELINE_S, Math.ceil((durationS || 0) / 10) * 10);
  const ordered = [...detections].sort((a, b) => a.start_s - b.start_s);
  let lastEnd = [-Infinity, -Infinity];
  const cursor = document.createElement("span");
  cursor.className = "curseur";
  cursor.style.left = `${(100 * (durationS || 0)) / span}%`;
  $("frise").replaceChildren(cursor, ...ordered.map((d) => {
    const chip = document.createElement("span");
    chip.className = "mot";
    chip.textContent = d.keyword;
    chip.title = `${d.keyword} — ${nombre(d.start_s)}–${nombre(d.end_s)} s, score ${pourcent(d.score)}`;
    chip.style.left = `${(100 * d.start_s) / span}%`;
    chip.style.background = serviceOf(d).colour;
    // two rows, so that close keywords do not overlap
    const row = d.start_s < lastEnd[0] ? 1 : 0;
    if (row) chip.classList.add("bas");
    lastEnd[row] = d.start_s + span / 8;
    return chip;
  }));
  const ticks = [];
  for (let t = 0; t <= span; t += span / 5) {
    const tick = document.createElement("span");
    tick.textContent = `${Math.round(t)} s`;
    ticks.push(tick);
  }
  $("graduations").replaceChildren(...ticks);
  $("duree").textContent = durationS ? `(${nombre(durationS)} s d'audio)` : "";
}

function showCall(triage, detections, durationS) {
  renderTriage(triage, detections);
  renderTimeline(detections, durationS);
}

// -- live call ------------------------------------------------------------------------------
async function startLiveCall() {
  showError("");
  $("demarrer").disabled = true;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/stream?format=s16`);
  socket.binaryType = "arraybuffer";
  live = { socket, capture: null, detections: [], audioS: 0, sentS: 0, triage: null };
  selectedCall = null;
  showCall(null, [], 0);
  socket.onmessage = (event) => onLiveMessage(JSON.parse(event.data));
  socket.onclose = () => endLiveCall();
  socket.onerror = () => showError("Connexion au serveur perdue.");
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.addEventListener("close", () => reject(new Error("connexion refusée")), { once: true });
  }).catch((error) => { showError(`Impossible de joindre le serveur : ${error.message}`); });
  if (socket.readyState !== WebSocket.OPEN) return;
  let capture;
  try {
    capture = await startCapture((frame) => {
      if (socket.readyState !== WebSocket.OPEN) return;
      socket.send(frame);
      if (live) live.sentS += frame.byteLength / 2 / 16000;
    });
  } catch (error) {
    showError(`Micro indisponible : ${error.message}`);
    socket.close();
    return;
  }
  if (!live || live.socket !== socket) { // the server ended the call meanwhile
    capture.stop();
    return;
  }
  live.capture = capture;
  $("raccrocher").disabled = false;
  $("etat").textContent = "Appel en cours…";
  $("etat").classList.add("actif");
}

function onLiveMessage(message) {
  if (!live) return;
  switch (message.type) {
    case "started":
      live.callId = message.call_id;
      $("etat").textContent = `Appel n° ${message.call_id} en cours…`;
      refreshHistory();
      break;
    case "detection":
      live.detections.push(message);
      renderTimeline(live.detections, live.audioS);
      break;
    case "triage":
      live.triage = message;
      live.audioS = message.audio_s;
      showCall(message, live.detections, live.audioS);
      refreshHistory();
      break;
    case "progress":
      live.audioS = message.audio_s;
      renderTimeline(live.detections, live.audioS);
      // audio sent but not yet analysed: the server is falling behind
      const lag = live.sentS - live.audioS;
      $("etat").textContent = `Appel n° ${live.callId} en cours — ${Math.floor(live.audioS)} s` +
        (lag > 1 ? ` (analyse en retard de ${nombre(lag)} s)` : "");
      break;
    case "final":
      showCall(message.result, message.result.detections, message.result.duration_s);
      break;
    case "error":
      showError(`Le serveur a interrompu l'appel : ${message.message}`);
      break;
  }
}

async function hangUp() {
  if (!live) return;
  $("raccrocher").disabled = true;
  $("etat").textContent = "Fin de l'appel…";
  if (live.capture) await live.capture.stop();
  live.capture = null;
  if (live.socket.readyState === WebSocket.OPEN) live.socket.send("stop");
}

function endLiveCall() {
  if (!live) return;
  if (live.capture) live.capture.stop();
  live = null;
  $("demarrer").disabled = false;
  $("raccrocher").disabled = true;
  $("etat").textContent = "Aucun appel en cours";
  $("etat").classList.remove("actif");
  refreshHistory();
}

// -- dropped recording ----------------------------------------------------------------------
async function triageFile(file) {
  showError("");
  $("etat").textContent = `Analyse de « ${file.name} »…`;
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const response = await fetch("/api/triage", { method: "POST", body: form });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const reason = response.status === 413 ? "fichier trop volumineux"
        : response.status === 422 ? "ce fichier n'est pas un enregistrement audio lisible"
        : `erreur ${response.status}`;
      showError(`Enregistrement refusé : ${reason}. ${body.detail ? `(${body.detail})` : ""}`);
      return;
    }
    showCall(body, body.detections, body.duration_s);
    selectedCall = body.call_id;
  } catch (error) {
    showError(`Impossible de joindre le serveur : ${error.message}`);
  } finally {
    $("etat").textContent = live ? "Appel en cours…" : "Aucun appel en cours";
    refreshHistory();
  }
}

// -- history --------------------------------------------------------------------------------
async function refreshHistory() {
  let calls;
  try {
    calls = await (await fetch("/api/calls?limit=50")).json();
  } catch {
    return;
  }
  $("appels").replaceChildren(...calls.map((call) => {
    const row = document.createElement("tr");
    if (call.id === selectedCall) row.classList.add("choisi");
    const heure = new Date(call.started_at * 1000).toLocaleTimeString("fr-FR");
    const cells = [
      String(call.id), heure, SOURCES[call.source] || call.source,
      STATUTS[call.status] || call.status, "",
      call.confidence == null ? "—" : pourcent(call.confidence), String(call.n_detections),
    ];
    for (const text of cells) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    row.children[3].className = `statut-${call.status.replace(" ", "-").normalize("NFD")
      .replace(/[\u0300-\u036f]/g, "")}`;
    if (call.service) {
      const s = serviceOf(call);
      const chip = document.createElement("span");
      chip.className = "pastille";
      chip.style.background = s.colour;
      chip.textContent = call.service_label || s.label;
      row.children[4].append(chip);
    } else {
      row.children[4].textContent = "—";
    }
    row.title = call.name || "";
    row.onclick = () => openCall(call.id);
    return row;
  }));
}

async function openCall(id) {
  if (live) return; // the live call keeps the display
  const call = await (await fetch(`/api/calls/${id}`)).json();
  selectedCall = id;
  showCall(call.triage, call.detections, call.duration_s);
  refreshHistory();
}

// -- wiring ---------------------------------------------------------------------------------
async function init() {
  try {
    services = (await (await fetch("/api/vocabulary")).json()).services;
  } catch {
    showError("Impossible de joindre le serveur.");
  }
  $("demarrer").onclick = startLiveCall;
  $("raccrocher").onclick = hangUp;
  $("fichier").onchange = (event) => event.target.files[0] && triageFile(event.target.files[0]);
  const drop = $("depot");
  drop.ondragover = (event) => { event.preventDefault(); drop.classList.add("survol"); };
  drop.ondragleave = () => drop.classList.remove("survol");
  drop.ondrop = (event) => {
    event.preventDefault();
    drop.classList.remove("survol");
    if (event.dataTransfer.files[0]) triageFile(event.dataTransfer.files[0]);
  };
  drop.onkeydown = (event) => { if (event.key === "Enter") $("fichier").click(); };
  showCall(null, [], 0);
  refreshHistory();
  setInterval(() => { if (!live) refreshHistory(); }, 5000);
}

init();

// The artsim page: an image (dropped, pasted or chosen) and/or a prompt -> POST /search -> cards.
"use strict";

const TEXTS = {
  en: {
    tagline: "Which original artworks is this image or prompt like?",
    drop: "Drop an image here, paste it (Ctrl+V) or choose a file",
    clearImage: "Remove image",
    chooseFile: "Choose a file",
    promptLabel: "Prompt or description (optional)",
    promptPlaceholder: "e.g. a red circle on a green background",
    kLabel: "Results",
    search: "Search",
    searching: "Searching…",
    needInput: "Add an image or type a prompt first.",
    found: (n) => `${n} closest originals`,
    none: "No original matched.",
    score: "score",
    group: "group",
    by: "by",
    verdicts: { copy: "copy", derived: "derived", related: "related", unrelated: "unrelated", uncalibrated: "uncalibrated", uninformative: "uninformative (a picture of one colour)" },
    probability: (p) => `${p}% likely its original`,
    measured: (recall, n) => ` Measured there: ${recall}% of derivatives of indexed originals found first and called derived, against ${n} queries with no original indexed.`,
    background: (rank) => ` For this query the threshold includes its score against its ${rank}th closest original: a query close to many originals needs more.`,
    lookAlikes: (found, checked) => ` ${found} of ${checked} originals checked look like an original of another group (one picture under two names?): a derivative of one is called derived from the other.`,
    scoreNames: { image: "image–image", text: "prompt–caption", i2t: "image–caption", t2i: "prompt–image", fused: "fused", copy: "copy (same pixels)", content: "content (what is drawn)" },
    tasks: { image: "image vs. image", text: "prompt vs. caption", fused: "image + prompt", t2i: "prompt vs. image" },
    calibrated: (t, rate, where) => `“derived” means a score ≥ ${t}: at most ${rate}% of searches whose original is not indexed get it (calibrated on ${where === "collection" ? "this collection" : "the model's calibration data"}). “copy”: the image survives almost unchanged; “related”: the prompt or subject matches, the image is not shown to come from it. The % is the calibrated probability that this result, at its rank, is the query's original (with even odds that the original is indexed; fitted apart for the first result and for those below it).`,
    uncalibrated: "Uncalibrated: no decision threshold was measured for this model and collection (run `artsim calibrate --index ...`), so no verdict is given. Scores are cosine similarities (1 = identical).",
    health: (n, m) => `${n} originals · model ${m}`,
    failed: "The request failed",
    why: "why?",
    whyTitle: "Show where this original matches your image, on both pictures",
    explaining: "Finding where they match…",
    whyNote: (part, score) => `Colour on both pictures: where they match (red strongest, faint when weak); the green boxes link the best-matching regions. ${part}: ${score}.`,
  },
  es: {
    tagline: "¿A qué obras originales se parece esta imagen o este texto?",
    drop: "Suelta una imagen aquí, pégala (Ctrl+V) o elige un archivo",
    clearImage: "Quitar la imagen",
    chooseFile: "Elegir un archivo",
    promptLabel: "Texto o descripción (opcional)",
    promptPlaceholder: "p. ej. un círculo rojo sobre fondo verde",
    kLabel: "Resultados",
    search: "Buscar",
    searching: "Buscando…",
    needInput: "Primero añade una imagen o escribe un texto.",
    found: (n) => `Las ${n} obras originales más parecidas`,
    none: "Ninguna obra original coincide.",
    score: "puntuación",
    group: "grupo",
    by: "de",
    verdicts: { copy: "copia", derived: "derivada", related: "relacionada", unrelated: "no relacionada", uncalibrated: "sin calibrar", uninformative: "sin información (una imagen de un solo color)" },
    probability: (p) => `${p}% de probabilidad de ser su original`,
    measured: (recall, n) => ` Medido allí: el ${recall}% de las derivadas de originales indexados sale primero y como derivada, frente a ${n} consultas sin original indexado.`,
    background: (rank) => ` Para esta consulta el umbral incluye su puntuación frente a su ${rank}.º original más cercano: una consulta parecida a muchos originales necesita más.`,
    lookAlikes: (found, checked) => ` ${found} de ${checked} originales revisados se parecen a un original de otro grupo (¿una imagen con dos nombres?): una derivada de uno se declara derivada del otro.`,
    scoreNames: { image: "imagen–imagen", text: "texto–leyenda", i2t: "imagen–leyenda", t2i: "texto–imagen", fused: "combinada", copy: "copia (mismos píxeles)", content: "contenido (lo dibujado)" },
    tasks: { image: "imagen frente a imagen", text: "texto frente a leyenda", fused: "imagen + texto", t2i: "texto frente a imagen" },
    calibrated: (t, rate, where) => `«derivada» significa una puntuación ≥ ${t}: como mucho el ${rate}% de las búsquedas cuyo original no está indexado la reciben (calibrado en ${where === "collection" ? "esta colección" : "los datos de calibración del modelo"}). «copia»: la imagen sobrevive casi sin cambios; «relacionada»: coincide el texto o el tema, sin pruebas de que la imagen venga de ella. El % es la probabilidad calibrada de que este resultado, en su puesto, sea el original de la consulta (con las mismas probabilidades de que el original esté indexado o no; ajustada aparte para el primer resultado y para los siguientes).`,
    uncalibrated: "Sin calibrar: no hay un umbral de decisión medido para este modelo y esta colección (ejecuta `artsim calibrate --index ...`), así que no se da veredicto. Las puntuaciones son similitudes coseno (1 = idénticas).",
    health: (n, m) => `${n} obras originales · modelo ${m}`,
    failed: "La petición falló",
    why: "¿por qué?",
    whyTitle: "Mostrar dónde coincide este original con tu imagen, en las dos imágenes",
    explaining: "Buscando dónde coinciden…",
    whyNote: (part, score) => `Color en las dos imágenes: dónde coinciden (rojo lo más fuerte, tenue si es débil); los recuadros verdes unen las zonas que mejor coinciden. ${part}: ${score}.`,
  },
};

const $ = (id) => document.getElementById(id);
let lang = new URLSearchParams(location.search).get("lang") === "es" ? "es" : "en";
let imageFile = null;
let lastResponse = null;
let lastHealth = null;
let searchedImage = null;  // the image of the search whose results are shown ("why?" maps it)
let cards = new Map();  // result id -> its card's elements
let shownWhy = null;  // {id, data}: the match map on show

function t(key) { return TEXTS[lang][key]; }

function applyLanguage() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  document.querySelectorAll(".lang button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.lang === lang)));
  if (lastResponse) render(lastResponse);
  if (lastHealth) $("health").textContent = t("health")(lastHealth.count, lastHealth.model_id);
}

function setLanguage(next) {
  lang = next;
  const url = new URL(location.href);
  if (lang === "es") url.searchParams.set("lang", "es"); else url.searchParams.delete("lang");
  history.replaceState(null, "", url);
  applyLanguage();
}

function setImage(file) {
  imageFile = file;
  clearWhy();
  const preview = $("preview");
  if (file) {
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    $("clear-image").hidden = false;
  } else {
    preview.removeAttribute("src");
    preview.hidden = true;
    $("clear-image").hidden = true;
    $("image").value = "";
  }
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function fmt(x) { return (Math.round(x * 1000) / 1000).toFixed(3); }

function render(data) {
  const list = $("results");
  list.replaceChildren();
  const n = data.results.length;
  $("status").textContent = n ? `${t("found")(n)} (${t("tasks")[data.task] || data.task})` : t("none");
  const cal = $("calibration");
  const first = data.results[0];
  // the threshold of THIS query in score units (it includes the query's background when the
  // collection's calibration normalises the task; null when that background is unknown: the
  // calibrated threshold is then on score minus background, not a score); a server from before
  // derived_threshold: the task's calibrated threshold
  const taskThreshold = "derived_threshold" in data ? data.derived_threshold : (data.calibration.thresholds || {})[data.task];
  if (data.calibration.status === "calibrated" && first && taskThreshold !== undefined && taskThreshold !== null) {
    cal.textContent = t("calibrated")(fmt(taskThreshold), Math.round(data.calibration.rate * 1000) / 10, data.calibration.source);
    const measured = ((data.calibration.measured || {})[data.task] || {})[String(data.calibration.rate)];
    if (measured) cal.textContent += t("measured")(Math.round(measured.recall * 100), data.calibration.distractor_queries || "?");
    if ((data.calibration.background || {})[data.task]) cal.textContent += t("background")(data.calibration.background[data.task].rank);
    const look = data.calibration.look_alikes;
    if (look && look.found) cal.textContent += t("lookAlikes")(look.found, look.checked);
  } else {
    cal.textContent = t("uncalibrated");
    cal.title = data.calibration.note || "";  // the server's reason, in English
  }
  cal.hidden = false;
  cards = new Map();
  for (const r of data.results) {
    const li = document.createElement("li");
    li.className = `result ${r.verdict}`;
    li.dataset.id = r.id;
    const img = document.createElement("img");
    img.src = r.thumbnail_url;
    img.alt = r.title || r.id;
    img.loading = "lazy";
    const title = document.createElement("div");
    title.className = "title";
    const rank = document.createElement("span");
    rank.className = "rank";
    rank.textContent = `#${r.rank}`;
    const name = document.createElement("span");
    name.textContent = r.title || r.id;
    title.append(rank, name);
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = [r.id, `${t("group")} ${r.group}`, r.artist ? `${t("by")} ${r.artist}` : ""].filter(Boolean).join(" · ");
    const score = document.createElement("div");
    score.className = "score";
    score.textContent = fmt(r.score);
    score.title = t("score");
    const verdict = document.createElement("span");
    verdict.className = `verdict ${r.verdict}`;
    verdict.textContent = t("verdicts")[r.verdict] || r.verdict;
    if (r.probability !== null && r.probability !== undefined) {
      const percent = Math.round(r.probability * 100);
      verdict.textContent += ` · ${percent}%`;
      verdict.title = t("probability")(percent);
    }
    const dl = document.createElement("dl");
    for (const [key, value] of Object.entries(r.scores)) {
      const dt = document.createElement("dt");
      dt.textContent = t("scoreNames")[key] || key;
      const dd = document.createElement("dd");
      dd.textContent = fmt(value);
      dl.append(dt, dd);
    }
    const picture = document.createElement("div");
    picture.className = "picture";
    picture.append(img);
    li.append(picture, title, meta, score, verdict, dl);
    if (searchedImage) {  // a prompt alone has no regions to map
      const why = document.createElement("button");
      why.type = "button";
      why.className = "why";
      why.textContent = t("why");
      why.title = t("whyTitle");
      why.setAttribute("aria-pressed", "false");
      why.addEventListener("click", () => explain(r.id));
      const note = document.createElement("p");
      note.className = "why-note";
      note.hidden = true;
      li.append(why, note);
      cards.set(r.id, { picture, img, why, note });
    }
    list.append(li);
  }
  if (shownWhy) showWhy();
}

// --- "why?": the match map of the searched image against one result (POST /explain) ---

const HEAT = [[49, 54, 149], [116, 173, 209], [254, 224, 144], [244, 109, 67], [165, 0, 38]];

function heatColour(x) {
  const v = Math.min(Math.max(x, 0), 1) * (HEAT.length - 1);
  const low = Math.min(Math.floor(v), HEAT.length - 2);
  const mix = v - low;
  return HEAT[low].map((c, k) => Math.round(c * (1 - mix) + HEAT[low + 1][k] * mix));
}

// A canvas the size of the picture: the grid's heat (colour relative to low..high, opacity the
// value itself, as in the PNG) smoothed over it, and the linked region boxed.
function heatCanvas(img, grid, box, low, high) {
  const width = img.naturalWidth || 256, height = img.naturalHeight || 256;
  const n = grid.length;
  const cells = document.createElement("canvas");
  cells.width = n;
  cells.height = n;
  const small = cells.getContext("2d");
  const pixels = small.createImageData(n, n);
  for (let row = 0; row < n; row++) {
    for (let col = 0; col < n; col++) {
      const value = grid[row][col];
      const [red, green, blue] = heatColour((value - low) / Math.max(high - low, 1e-6));
      pixels.data.set([red, green, blue, Math.round(255 * 0.65 * Math.min(Math.max(value, 0), 1))], (row * n + col) * 4);
    }
  }
  small.putImageData(pixels, 0, 0);
  const canvas = document.createElement("canvas");
  canvas.className = "heat";
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = true;
  context.drawImage(cells, 0, 0, width, height);
  context.strokeStyle = "rgb(20, 220, 120)";
  context.lineWidth = Math.max(2, Math.round(width / 60));
  context.strokeRect(box[0] * width, box[1] * height, (box[2] - box[0]) * width, (box[3] - box[1]) * height);
  return canvas;
}

function overlayOn(container, img, grid, box, low, high) {
  container.querySelectorAll("canvas.heat").forEach((c) => c.remove());
  const draw = () => container.append(heatCanvas(img, grid, box, low, high));
  if (img.complete && img.naturalWidth) draw(); else img.addEventListener("load", draw, { once: true });
}

function clearWhy() {
  shownWhy = null;
  document.querySelectorAll("canvas.heat").forEach((c) => c.remove());
  for (const card of cards.values()) {
    card.why.setAttribute("aria-pressed", "false");
    card.note.hidden = true;
  }
}

function showWhy() {
  const card = cards.get(shownWhy.id);
  if (!card) { shownWhy = null; return; }
  const data = shownWhy.data;
  const all = [...data.a.grid.flat(), ...data.b.grid.flat()];
  const low = Math.min(...all), high = Math.max(...all);
  overlayOn($("preview-box"), $("preview"), data.a.grid, data.link.a, low, high);
  overlayOn(card.picture, card.img, data.b.grid, data.link.b, low, high);
  card.why.setAttribute("aria-pressed", "true");
  card.note.textContent = t("whyNote")(t("scoreNames")[data.part] || data.part, fmt(data.score));
  card.note.hidden = false;
}

async function explain(id) {
  const card = cards.get(id);
  const again = shownWhy && shownWhy.id === id;
  clearWhy();
  if (again || !card || !searchedImage) return;  // a second press hides the map
  showError("");
  card.why.disabled = true;
  card.note.textContent = t("explaining");
  card.note.hidden = false;
  const form = new FormData();
  form.append("image_a", searchedImage, searchedImage.name || "pasted.png");
  form.append("original_id", id);
  try {
    const response = await fetch("/explain", { method: "POST", body: form });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || `${t("failed")} (${response.status})`);
    shownWhy = { id, data };
    showWhy();
  } catch (error) {
    card.note.hidden = true;
    showError(error.message || t("failed"));
  } finally {
    card.why.disabled = false;
  }
}

async function search(event) {
  event.preventDefault();
  showError("");
  const text = $("text").value.trim();
  if (!imageFile && !text) { showError(t("needInput")); return; }
  const form = new FormData();
  if (imageFile) form.append("image", imageFile, imageFile.name || "pasted.png");
  if (text) form.append("text", text);
  form.append("k", $("k").value);
  $("submit").disabled = true;
  $("status").textContent = t("searching");
  try {
    const response = await fetch("/search", { method: "POST", body: form });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || `${t("failed")} (${response.status})`);
    lastResponse = data;
    clearWhy();
    searchedImage = imageFile;
    render(data);
  } catch (error) {
    $("status").textContent = "";
    showError(error.message || t("failed"));
  } finally {
    $("submit").disabled = false;
  }
}

function init() {
  document.querySelectorAll(".lang button").forEach((b) => b.addEventListener("click", () => setLanguage(b.dataset.lang)));
  $("query").addEventListener("submit", search);
  $("image").addEventListener("change", (e) => setImage(e.target.files[0] || null));
  $("clear-image").addEventListener("click", () => setImage(null));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = [...e.dataTransfer.files].find((f) => f.type.startsWith("image/"));
    if (file) setImage(file);
  });
  document.addEventListener("paste", (e) => {
    const item = [...(e.clipboardData?.items || [])].find((i) => i.type.startsWith("image/"));
    if (item) { e.preventDefault(); setImage(item.getAsFile()); }
  });
  fetch("/health").then((r) => r.json()).then((h) => { lastHealth = h; applyLanguage(); }).catch(() => {});
  applyLanguage();
}

init();

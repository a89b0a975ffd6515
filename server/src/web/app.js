// The back-office page: works the review queue through the server's own API, in French or
// English (the browser's language, or the switch, remembered). Every word about a code (an
// outcome, a UPU event, a status, a kind of place) comes from the server (/backoffice/words.json,
// built from server/src/words.rs); this script holds only its own labels. Dates are written in
// the service's time zone, one format per language. With a tile server configured
// (--map-tiles-url) the attempt is drawn against the pin on a Leaflet map, else on a sketch.
// Everything the server sends is put on the page with textContent, never as markup.
"use strict";

const TOKEN_KEY = "tournee.backoffice.token";
const LANG_KEY = "tournee.backoffice.lang";
const SVG_NS = "http://www.w3.org/2000/svg";

const LABELS = {
  fr: {
    backOffice: "back-office",
    other: "English",
    tokenLabel: "Jeton back-office",
    tokenPlaceholder: "collez un jeton back-office",
    signIn: "Se connecter",
    signOut: "Se déconnecter",
    signInFirst: "Connectez-vous avec un jeton back-office.",
    notBackOffice: "Ce jeton n'est pas un jeton back-office.",
    refused: "Connexion refusée",
    signedOut: "Déconnecté.",
    signedAs: "Connecté : ",
    queueTitle: "File de vérification",
    reload: "Recharger",
    kind: "Type",
    allKinds: "tous",
    corrections: "corrections d'adresse",
    attempts: "tentatives signalées",
    disputes: "contestations",
    statusFilter: "État",
    open: "à décider",
    decided: "décidées",
    allStatuses: "toutes",
    more: "Plus",
    searchTitle: "Recherche",
    s10: "N° de suivi",
    address: "Adresse",
    postman: "Facteur",
    round: "Tournée",
    date: "Jour",
    search: "Rechercher",
    choose: "Choisissez une entrée de la file ou un résultat de recherche.",
    commentLabel: "Commentaire (obligatoire ; le facteur le voit pour une correction)",
    approve: "Approuver",
    reject: "Rejeter",
    nothing: "Rien ici.",
    openEntries: (n) => `${n} ${n === 1 ? "entrée à décider" : "entrées à décider"} dans la file${n >= 50 ? " (au moins)" : ""}.`,
    unreachable: "Le serveur ne répond pas",
    queueUnreadable: "La file ne peut être lue",
    entryUnreadable: "Entrée illisible",
    queued: "Mise en file",
    deliveryPoint: "Adresse",
    item: "Envoi",
    customerSays: "Le client dit",
    positionTitle: "Position par rapport au repère",
    decision: "Décision",
    decisionBy: "Par",
    decisionWhen: "Quand",
    comment: "Commentaire",
    byCorroboration: "par corroboration",
    timelineOf: "Historique de ",
    hints: {
      correction: "Approuver publie les champs proposés comme référence de l'adresse ; chaque téléphone les reçoit à sa prochaine synchronisation. Le facteur voit votre commentaire dans tous les cas.",
      attempt: "Approuvez si la tentative est juste telle qu'enregistrée ; rejetez si elle n'aurait pas dû être enregistrée là.",
      dispute: "Approuvez si le client a raison et que la tentative n'a pas eu lieu comme enregistrée ; rejetez si elle tient.",
    },
    field: "Champ",
    now: "Actuel",
    proposed: "Proposé",
    correctionTitle: "Correction proposée",
    proposedBy: "Proposée par",
    device: "appareil",
    signature: "Signature",
    signedBy: (device) => `signée par l'appareil ${device}, vérifiée à la réception`,
    unsigned: "non signée (application d'une version antérieure)",
    signedByServer: "signée par le serveur, qui l'a écrite",
    when: "Quand",
    sameProposal: "Même proposition",
    proposals: (n, by) => `${n} ${n === 1 ? "proposition" : "propositions"}, par ${by}`,
    currentAddress: "Adresse actuelle",
    currentAccess: "Accès actuel",
    access: (code, floor, box) => `code ${code} · étage ${floor} · boîte ${box}`,
    attemptTitle: "Tentative",
    outcome: "Résultat",
    atTheDoor: "À la porte",
    positionRecorded: "Position",
    notRecorded: "non enregistrée",
    distance: "Distance au repère",
    unknown: "inconnue",
    noticeNumber: "N° d'avis de passage",
    waitsAt: "Attend à",
    until: "jusqu'au",
    noPin: "L'adresse n'a pas de repère.",
    noPosition: "Aucune position n'a été enregistrée.",
    pin: "repère",
    attemptMark: "tentative",
    proposedPin: "repère proposé",
    proofs: "Preuves",
    noProofs: "Ni photo ni signature.",
    proofMissing: "pas envoyée par le téléphone, ou supprimée après la durée de conservation",
    proofUnreadable: "n'a pas pu être chargée",
    proofKinds: { photo: "photo", signature: "signature" },
    proofAlt: "prise à la porte",
    metresFromPin: (m) => `à ${m} m du repère`,
    needComment: "Une décision demande un commentaire.",
    entryDecided: (id, status) => `Entrée n° ${id} : ${status}.`,
    alreadyDecided: (id) => `L'entrée n° ${id} était déjà décidée`,
    decisionRefused: "La décision est refusée",
    noTimeline: "Pas d'historique",
    customerChose: "le client a choisi : ",
    cannotApply: " (ne peut s'appliquer)",
    disputed: "le client conteste la tentative : ",
    disputeDecision: "contestation ",
    noEvent: "Aucun événement.",
    status: "État",
    giveOne: "Donnez au moins un critère.",
    searchRefused: "Recherche refusée",
    found: (n, more) => `${n}${more ? "+" : ""} ${n === 1 ? "envoi trouvé" : "envois trouvés"}.`,
    noMatch: "Aucun envoi ne correspond.",
    itemTitle: "Envoi ",
    mapOf: "Carte : ",
  },
  en: {
    backOffice: "back office",
    other: "Français",
    tokenLabel: "Back-office token",
    tokenPlaceholder: "paste a back-office token",
    signIn: "Sign in",
    signOut: "Sign out",
    signInFirst: "Sign in with a back-office token.",
    notBackOffice: "This token is not a back-office token.",
    refused: "Sign-in refused",
    signedOut: "Signed out.",
    signedAs: "Signed in as ",
    queueTitle: "Review queue",
    reload: "Reload",
    kind: "Kind",
    allKinds: "all",
    corrections: "address corrections",
    attempts: "flagged attempts",
    disputes: "customer disputes",
    statusFilter: "Status",
    open: "open",
    decided: "decided",
    allStatuses: "all",
    more: "More",
    searchTitle: "Search",
    s10: "S10",
    address: "Address",
    postman: "Postman",
    round: "Round",
    date: "Date",
    search: "Search",
    choose: "Choose an entry of the queue or a search result.",
    commentLabel: "Comment (required; the postman sees it for a correction)",
    approve: "Approve",
    reject: "Reject",
    nothing: "Nothing here.",
    openEntries: (n) => `${n}${n >= 50 ? " or more" : ""} open ${n === 1 ? "entry" : "entries"} in the queue.`,
    unreachable: "The server cannot be reached",
    queueUnreadable: "The queue cannot be read",
    entryUnreadable: "Entry cannot be read",
    queued: "Queued",
    deliveryPoint: "Address",
    item: "Item",
    customerSays: "The customer says",
    positionTitle: "Position against the pin",
    decision: "Decision",
    decisionBy: "By",
    decisionWhen: "When",
    comment: "Comment",
    byCorroboration: "by corroboration",
    timelineOf: "Timeline of ",
    hints: {
      correction: "Approve to publish the proposed fields as the delivery point's reference data; every phone gets them at its next sync. The postman sees your comment either way.",
      attempt: "Approve if the attempt stands as recorded; reject if it should not have been recorded there.",
      dispute: "Approve if the customer is right and the attempt was not made as recorded; reject if the attempt stands.",
    },
    field: "Field",
    now: "Now",
    proposed: "Proposed",
    correctionTitle: "Proposed correction",
    proposedBy: "Proposed by",
    device: "device",
    signature: "Signature",
    signedBy: (device) => `signed by device ${device}, verified on receipt`,
    unsigned: "not signed (an app of an earlier version)",
    signedByServer: "signed by the server, which wrote it",
    when: "When",
    sameProposal: "Same proposal",
    proposals: (n, by) => `${n} ${n === 1 ? "proposal" : "proposals"} by ${by}`,
    currentAddress: "Current address",
    currentAccess: "Current access",
    access: (code, floor, box) => `door code ${code} · floor ${floor} · mailbox ${box}`,
    attemptTitle: "Attempt",
    outcome: "Outcome",
    atTheDoor: "At the door",
    positionRecorded: "Position",
    notRecorded: "not recorded",
    distance: "Distance to pin",
    unknown: "unknown",
    noticeNumber: "Notice number",
    waitsAt: "Waits at",
    until: "until",
    noPin: "The delivery point has no reference pin.",
    noPosition: "No position was recorded.",
    pin: "pin",
    attemptMark: "attempt",
    proposedPin: "proposed pin",
    proofs: "Proofs",
    noProofs: "No photo or signature.",
    proofMissing: "not uploaded by the phone, or deleted after the retention period",
    proofUnreadable: "could not be loaded",
    proofKinds: { photo: "photo", signature: "signature" },
    proofAlt: "taken at the door",
    metresFromPin: (m) => `${m} m from the pin`,
    needComment: "A decision needs a comment.",
    entryDecided: (id, status) => `Entry #${id} ${status}.`,
    alreadyDecided: (id) => `Entry #${id} was already decided`,
    decisionRefused: "The decision was refused",
    noTimeline: "No timeline",
    customerChose: "customer chose: ",
    cannotApply: " (cannot apply)",
    disputed: "customer disputed the attempt: ",
    disputeDecision: "dispute ",
    noEvent: "No event yet.",
    status: "Status",
    giveOne: "Give at least one search field.",
    searchRefused: "Search refused",
    found: (n, more) => `${n}${more ? "+" : ""} ${n === 1 ? "item" : "items"} found.`,
    noMatch: "No item matches.",
    itemTitle: "Item ",
    mapOf: "Map: ",
  },
};

/** The language the browser prefers among French and English; French when it names neither. */
function browserLanguage() {
  for (const tag of navigator.languages || [navigator.language || ""]) {
    const primary = String(tag).toLowerCase().split("-")[0];
    if (primary === "fr" || primary === "en") return primary;
  }
  return "fr";
}

function savedLanguage() {
  try {
    const saved = localStorage.getItem(LANG_KEY);
    if (saved === "fr" || saved === "en") return saved;
  } catch { /* storage off: the browser's language stands */ }
  return null;
}

const state = {
  token: null,
  selected: null,
  lang: savedLanguage() || browserLanguage(),
  words: null,
  queueNext: null,
  searchNext: null,
  entry: null,
  shownItem: null,
  map: null,
};

const $ = (id) => document.getElementById(id);
const t = (key) => LABELS[state.lang][key];

/** The server's word for a code of a group; the code itself if the server has none. */
function word(group, code) {
  const words = state.words && state.words[state.lang] && state.words[state.lang][group];
  return (words && words[code]) || code;
}

/** Builds an element; children are nodes or strings (as text). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Says `message` in the status line: a text, or a function of the page's language that the
 * language switch says again in the other language. */
function say(message, kind) {
  state.said = { message, kind };
  const status = $("status");
  status.textContent = typeof message === "function" ? message() : message;
  status.className = "status" + (kind ? " " + kind : "");
}

/** A moment in the service's time zone, in the page's language's one format. */
function when(ms) {
  if (ms === null || ms === undefined) return "—";
  const zone = (state.words && state.words.time_zone) || "Europe/Paris";
  return new Intl.DateTimeFormat(state.lang === "fr" ? "fr-FR" : "en-GB", {
    day: "numeric",
    month: "short",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    timeZone: zone,
  }).format(new Date(ms));
}

/** A `YYYY-MM-DD` day in the page's language. */
function day(text) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text || "")) return text;
  const [y, m, d] = text.split("-").map(Number);
  return new Intl.DateTimeFormat(state.lang === "fr" ? "fr-FR" : "en-GB", {
    day: "numeric",
    month: "long",
    year: "numeric",
    timeZone: "UTC",
  }).format(new Date(Date.UTC(y, m - 1, d)));
}

function show(value) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "object") {
    if ("lat" in value && "lon" in value) return `${value.lat.toFixed(6)}, ${value.lon.toFixed(6)}`;
    return JSON.stringify(value);
  }
  return String(value);
}

/** The next page's URL from a `Link: <…>; rel="next"` header, or null. */
function nextLink(response) {
  const link = response.headers.get("Link") || "";
  const found = /<([^>]+)>;\s*rel="next"/.exec(link);
  return found ? found[1] : null;
}

/** Calls the API with the signed-in token, in the page's language; returns { status, body, next }. */
async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}`, "Accept-Language": state.lang };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    say(`${t("unreachable")}: ${error.message}`, "error");
    throw error;
  }
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { error: text };
  }
  if (response.status === 401) {
    signOut(`${t("signedOut")} ${errorText(parsed, response.status)}`);
  }
  return { status: response.status, body: parsed, next: nextLink(response) };
}

function errorText(body, status) {
  if (body && typeof body.message === "string") return body.message;
  return `HTTP ${status}`;
}

// ---------------------------------------------------------------- language

function applyLanguage() {
  document.documentElement.lang = state.lang;
  for (const node of document.querySelectorAll("[data-label]")) node.textContent = t(node.dataset.label);
  const template = $("decision-template").content;
  for (const node of template.querySelectorAll("[data-label]")) node.textContent = t(node.dataset.label);
  $("token").placeholder = t("tokenPlaceholder");
  const other = state.lang === "fr" ? "en" : "fr";
  $("language").textContent = t("other");
  $("language").lang = other;
  if (state.token) $("who").textContent = `${t("signedAs")}${subjectOf(state.token)}`;
  if (state.said && typeof state.said.message === "function") say(state.said.message, state.said.kind);
}

async function switchLanguage() {
  state.lang = state.lang === "fr" ? "en" : "fr";
  try {
    localStorage.setItem(LANG_KEY, state.lang);
  } catch { /* not remembered */ }
  applyLanguage();
  if (!state.token) {
    say(() => t("signInFirst"));
    return;
  }
  await loadQueue();
  if (state.entry) await renderEntry(state.entry);
  else if (state.shownItem) await showItem(state.shownItem);
}

async function loadWords() {
  const response = await fetch("/backoffice/words.json");
  if (response.ok) state.words = await response.json();
}

// ---------------------------------------------------------------- sign-in

async function signIn(token) {
  state.token = token;
  const { status, body, next } = await api("GET", "/v1/backoffice/queue?status=open");
  if (status !== 200) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    say(status === 403 ? t("notBackOffice") : `${t("refused")}: ${errorText(body, status)}`, "error");
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("sign-in-form").hidden = true;
  $("signed-in").hidden = false;
  $("who").textContent = `${t("signedAs")}${subjectOf(token)}`;
  $("workspace").hidden = false;
  renderQueue(body, next, false);
  say(() => t("openEntries")(body.length));
}

function subjectOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).sub || "back office";
  } catch {
    return "back office";
  }
}

function signOut(message) {
  state.token = null;
  state.selected = null;
  state.entry = null;
  state.shownItem = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("sign-in-form").hidden = false;
  $("signed-in").hidden = true;
  $("workspace").hidden = true;
  $("token").value = "";
  $("queue").replaceChildren();
  $("search-results").replaceChildren();
  $("queue-more").hidden = true;
  $("search-more").hidden = true;
  $("detail").replaceChildren(el("p", { class: "empty", text: t("choose") }));
  say(message || t("signedOut"));
}

// ---------------------------------------------------------------- queue

async function loadQueue() {
  const params = new URLSearchParams();
  if ($("kind-filter").value) params.set("kind", $("kind-filter").value);
  params.set("status", $("status-filter").value);
  const { status, body, next } = await api("GET", `/v1/backoffice/queue?${params}`);
  if (status !== 200) {
    if (status !== 401) say(`${t("queueUnreadable")}: ${errorText(body, status)}`, "error");
    return;
  }
  renderQueue(body, next, false);
}

async function moreQueue() {
  if (!state.queueNext) return;
  const { status, body, next } = await api("GET", state.queueNext);
  if (status !== 200) {
    if (status !== 401) say(`${t("queueUnreadable")}: ${errorText(body, status)}`, "error");
    return;
  }
  renderQueue(body, next, true);
}

/** Why an entry is queued, in words. */
function reasonText(entry) {
  const template = word("reasons", entry.reason_code);
  const distance = entry.attempt && entry.attempt.distance_m !== null && entry.attempt.distance_m !== undefined
    ? Math.round(entry.attempt.distance_m) : "?";
  const postman = entry.correction ? entry.correction.proposed_by : "";
  return template.replace("{distance}", distance).replace("{postman}", postman);
}

function statusText(entry) {
  const status = word("entry_statuses", entry.status);
  return entry.auto ? `${status} (${t("byCorroboration")})` : status;
}

function renderQueue(entries, next, append) {
  const list = $("queue");
  if (!append) list.replaceChildren();
  state.queueNext = next;
  $("queue-more").hidden = !next;
  if (entries.length === 0 && !append) {
    list.append(el("li", { class: "empty", text: t("nothing") }));
    return;
  }
  for (const entry of entries) {
    const subject = entry.address || entry.item_id || entry.subject_id;
    const item = el(
      "li",
      { "data-queue-id": entry.id, "data-kind": entry.kind, "data-status": entry.status, class: entry.id === state.selected ? "selected" : "" },
      el(
        "button",
        { type: "button", onclick: () => selectEntry(entry.id) },
        el("span", { class: `badge ${entry.kind}`, text: word("queue_kinds", entry.kind) }),
        el("span", { class: "subject", text: subject }),
        el("span", { class: "reason", text: reasonText(entry) }),
        el("span", { class: `state ${entry.status}`, text: statusText(entry) }),
        el("time", { text: when(entry.created_ms) }),
      ),
    );
    list.append(item);
  }
}

async function selectEntry(id) {
  state.selected = id;
  for (const li of $("queue").querySelectorAll("li[data-queue-id]")) {
    li.classList.toggle("selected", Number(li.dataset.queueId) === id);
  }
  const { status, body } = await api("GET", `/v1/backoffice/queue/${id}`);
  if (status !== 200) {
    if (status !== 401) say(`${t("entryUnreadable")} (${id}): ${errorText(body, status)}`, "error");
    return;
  }
  await renderEntry(body);
}

// ---------------------------------------------------------------- one entry

async function renderEntry(entry) {
  state.entry = entry;
  state.shownItem = null;
  const detail = $("detail");
  detail.replaceChildren();
  detail.dataset.queueId = entry.id;
  detail.append(
    el("h2", {}, `${word("queue_kinds", entry.kind)} n° ${entry.id}`, el("span", { class: `state ${entry.status}`, id: "entry-status", "data-status": entry.status, text: statusText(entry) })),
    el("p", { class: "reason", text: reasonText(entry) }),
    facts([
      [t("queued"), when(entry.created_ms)],
      [t("deliveryPoint"), entry.address || entry.delivery_point_id],
      [t("item"), entry.item_id],
    ]),
  );

  if (entry.correction) detail.append(correctionView(entry.correction));
  if (entry.attempt) detail.append(attemptView(entry.attempt), proofsView(entry.attempt.proofs));
  if (entry.dispute) {
    detail.append(
      el("h3", { text: t("customerSays") }),
      el("blockquote", { class: "dispute" }, el("p", { text: entry.dispute.comment }), el("footer", { text: entry.dispute.customer })),
    );
  }

  detail.append(el("h3", { text: t("positionTitle") }), positionFigure(entry));

  if (entry.status === "open") {
    const form = $("decision-template").content.firstElementChild.cloneNode(true);
    detail.append(el("h3", { text: t("decision") }), el("p", { class: "hint", id: "decision-hint", text: t("hints")[entry.kind] || "" }), form);
    form.querySelector("#approve").addEventListener("click", () => decide(entry.id, "approve"));
    form.querySelector("#reject").addEventListener("click", () => decide(entry.id, "reject"));
  } else {
    detail.append(
      el("h3", { text: t("decision") }),
      facts([
        [t("decision"), statusText(entry)],
        [t("decisionBy"), entry.decided_by],
        [t("decisionWhen"), when(entry.decided_at_ms)],
        [t("comment"), entry.comment],
      ]),
    );
  }
  placeMap();

  if (entry.item_id) {
    detail.append(el("h3", { text: `${t("timelineOf")}${entry.item_id}` }));
    await appendTimeline(detail, entry.item_id);
  }
}

function facts(rows) {
  const list = el("dl", { class: "facts" });
  for (const [name, value] of rows) {
    if (value === undefined || value === null) continue;
    list.append(el("dt", { text: name }), el("dd", { text: show(value) }));
  }
  return list;
}

const FIELDS = ["house_number", "suffix", "street", "building", "floor", "door_code", "mailbox_position", "pin", "note"];

function correctionView(correction) {
  // The address and the access data as they stand: approving overwrites what is shown here.
  const access = correction.current_access || {};
  const current = { ...(correction.current || {}), ...access };
  const proposed = correction.proposed || {};
  const table = el(
    "table",
    { class: "correction", id: "correction-table" },
    el("thead", {}, el("tr", {}, el("th", { text: t("field") }), el("th", { text: t("now") }), el("th", { text: t("proposed") }))),
  );
  const body = el("tbody");
  for (const field of FIELDS) {
    const value = proposed[field];
    if (value === null || value === undefined) continue;
    body.append(
      el(
        "tr",
        { "data-field": field },
        el("th", { text: word("fields", field) }),
        el("td", { text: show(current[field]) }),
        el("td", { class: "proposed", text: show(value) }),
      ),
    );
  }
  table.append(body);
  const agreeing = correction.same_proposals;
  return el(
    "div",
    {},
    el("h3", { text: t("correctionTitle") }),
    facts([
      [t("proposedBy"), `${correction.proposed_by} (${t("device")} ${correction.device})`],
      [t("when"), when(correction.proposed_at_ms)],
      [t("sameProposal"), t("proposals")(agreeing, correction.proposers.join(", ") || correction.proposed_by)],
      [t("currentAddress"), (current.lines || []).join(", ")],
      [t("currentAccess"), t("access")(show(access.door_code), show(access.floor), show(access.mailbox_position))],
    ]),
    el("div", { class: "table-scroll" }, table),
  );
}

/** Who signed an attempt: its device, the server (written on someone's behalf), or nobody. */
function signatureOf(attempt) {
  if (!attempt.signed_by) return t("unsigned");
  if (attempt.signed_by === "server") return t("signedByServer");
  return t("signedBy")(attempt.signed_by);
}

function attemptView(attempt) {
  const notice = attempt.notice || {};
  const waits = notice.waits_at;
  const waitsText = waits
    ? `${word("place_kinds", waits.kind)} ${waits.place_id}${waits.until ? ` ${t("until")} ${day(waits.until)}` : ""}`
    : undefined;
  return el(
    "div",
    {},
    el("h3", { text: t("attemptTitle") }),
    facts([
      [t("outcome"), word("outcomes", attempt.outcome)],
      [t("atTheDoor"), when(attempt.recorded_at_ms)],
      [t("postman"), `${attempt.postman} (${t("device")} ${attempt.device})`],
      [t("signature"), signatureOf(attempt)],
      [t("positionRecorded"), attempt.position ? `${show(attempt.position)}${attempt.position.accuracy_m ? ` ± ${Math.round(attempt.position.accuracy_m)} m` : ""}` : t("notRecorded")],
      [t("distance"), attempt.distance_m === null || attempt.distance_m === undefined ? t("unknown") : `${Math.round(attempt.distance_m)} m`],
      [t("noticeNumber"), notice.number],
      [t("waitsAt"), waitsText],
    ]),
  );
}

/**
 * The photos and signature an attempt names, as images beside it (issue #16). Each file is
 * fetched with the token (the route needs it) and shown as a data: URL, which the page's policy
 * allows for images; a proof not uploaded yet, or deleted after retention, says so.
 */
function proofsView(proofs) {
  const box = el("div", { class: "proofs", id: "proofs" }, el("h3", { text: t("proofs") }));
  if (!proofs || proofs.length === 0) box.append(el("p", { class: "empty", text: t("noProofs") }));
  for (const proof of proofs || []) {
    const kind = t("proofKinds")[proof.kind] || proof.kind;
    const label = `${kind} ${proof.sha256.slice(0, 12)}…`;
    const figure = el("figure", { class: "proof", "data-sha256": proof.sha256 }, el("figcaption", { text: label }));
    box.append(figure);
    if (!proof.url) {
      figure.append(el("p", { class: "empty", text: t("proofMissing") }));
      continue;
    }
    fetch(proof.url, { headers: { Authorization: `Bearer ${state.token}` } })
      .then((response) => (response.ok ? response.blob() : Promise.reject(new Error(`HTTP ${response.status}`))))
      .then((blob) => new Promise((resolve, reject) => {
        const reader = new FileReader();
        reader.onload = () => resolve(reader.result);
        reader.onerror = () => reject(reader.error);
        reader.readAsDataURL(blob);
      }))
      .then((src) => figure.prepend(el("img", { src, alt: `${kind} ${t("proofAlt")}` })))
      .catch((error) => figure.append(el("p", { class: "empty", text: `${t("proofUnreadable")} (${error.message})` })));
  }
  return box;
}

// ---------------------------------------------------------------- the map

/** Metres east and north of `origin`: equirectangular, fine over a few hundred metres. */
function offset(origin, point) {
  const r = 6371008.8;
  const rad = Math.PI / 180;
  return {
    x: (point.lon - origin.lon) * rad * r * Math.cos(origin.lat * rad),
    y: (point.lat - origin.lat) * rad * r,
  };
}

/** The pin and what is drawn against it (an attempt's position or a proposed pin), or null. */
function positions(entry) {
  const pin = entry.pin;
  if (entry.attempt && entry.attempt.position) {
    const other = entry.attempt.position;
    return { pin, other, label: t("attemptMark"), accuracy: other.accuracy_m || 0, distance: entry.attempt.distance_m };
  }
  if (entry.correction && entry.correction.proposed && entry.correction.proposed.pin) {
    return { pin, other: entry.correction.proposed.pin, label: t("proposedPin"), accuracy: 0, distance: null };
  }
  return { pin, other: null };
}

/** The tile server the operator configured (--map-tiles-url), or null: then the sketch. */
function tileServer() {
  const url = document.body.dataset.mapTiles;
  return url && window.L ? { url, attribution: document.body.dataset.mapAttribution || "" } : null;
}

function positionFigure(entry) {
  const where = positions(entry);
  if (!where.pin || !where.other) {
    const missing = !where.pin ? t("noPin") : t("noPosition");
    return el("p", { class: "no-position", id: "position-missing", text: missing });
  }
  const d = offset(where.pin, where.other);
  const distance = where.distance === null || where.distance === undefined ? Math.hypot(d.x, d.y) : where.distance;
  if (tileServer()) {
    return el(
      "figure",
      { class: "position" },
      el("div", { id: "position-map", class: "map", role: "img", "aria-label": `${t("mapOf")}${t("metresFromPin")(Math.round(distance))}`, "data-distance-m": Math.round(distance) }),
      el("figcaption", { class: "distance-caption", text: `${where.label} · ${t("metresFromPin")(Math.round(distance))}` }),
    );
  }
  return sketch(where, d, distance);
}

/** HTML-escaped text, for Leaflet's attribution, which it writes as markup. */
function escaped(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Draws the map into #position-map once it is on the page. */
function placeMap() {
  if (state.map) {
    state.map.remove();
    state.map = null;
  }
  const node = $("position-map");
  const tiles = tileServer();
  if (!node || !tiles || !state.entry) return;
  const where = positions(state.entry);
  const pin = [where.pin.lat, where.pin.lon];
  const other = [where.other.lat, where.other.lon];
  const map = L.map(node, { attributionControl: true, scrollWheelZoom: false });
  map.attributionControl.setPrefix(false);
  L.tileLayer(tiles.url, { maxZoom: 19, attribution: escaped(tiles.attribution) }).addTo(map);
  if (where.accuracy > 0) {
    L.circle(other, { radius: where.accuracy, className: "map-accuracy" }).addTo(map);
  }
  L.polyline([pin, other], { className: "map-gap", dashArray: "6 4" }).addTo(map);
  L.circleMarker(pin, { radius: 8, className: "map-pin" }).bindTooltip(t("pin"), { permanent: true, direction: "right" }).addTo(map);
  L.circleMarker(other, { radius: 8, className: "map-seen" }).bindTooltip(where.label, { permanent: true, direction: "right" }).addTo(map);
  map.fitBounds(L.latLngBounds([pin, other]).pad(0.4), { maxZoom: 18 });
  state.map = map;
}

function sketch(where, d, distance) {
  const width = 360;
  const height = 260;
  const half = Math.min(width, height) / 2 - 24;
  const extent = Math.max(Math.abs(d.x), Math.abs(d.y), where.accuracy, 10) * 1.25;
  const scale = half / extent;
  const cx = width / 2;
  const cy = height / 2;
  const px = cx + d.x * scale;
  const py = cy - d.y * scale;

  const root = svg("svg", {
    id: "position-svg",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "data-distance-m": Math.round(distance),
  });
  root.append(svg("title", {}, `${where.label}: ${t("metresFromPin")(Math.round(distance))}`));
  root.append(svg("rect", { x: 0, y: 0, width, height, class: "ground" }));
  for (const ring of niceRings(extent)) {
    root.append(svg("circle", { cx, cy, r: ring * scale, class: "ring" }));
    root.append(svg("text", { x: cx + ring * scale * 0.7071 + 3, y: cy - ring * scale * 0.7071 - 3, class: "ring-label" }, `${ring} m`));
  }
  if (where.accuracy > 0) root.append(svg("circle", { cx: px, cy: py, r: Math.max(where.accuracy * scale, 2), class: "accuracy" }));
  root.append(svg("line", { x1: cx, y1: cy, x2: px, y2: py, class: "gap" }));
  root.append(svg("circle", { cx, cy, r: 6, class: "pin", id: "pin-marker" }));
  root.append(svg("text", { x: cx + 9, y: cy + 16, class: "pin-label" }, t("pin")));
  root.append(svg("circle", { cx: px, cy: py, r: 6, class: "seen", id: "attempt-marker" }));
  root.append(svg("text", { x: px + 9, y: py - 8, class: "seen-label" }, where.label));
  root.append(svg("text", { x: 10, y: height - 10, class: "distance" }, t("metresFromPin")(Math.round(distance))));
  root.append(svg("text", { x: width - 14, y: 20, class: "north" }, "N ↑"));
  return el("figure", { class: "position" }, root);
}

function niceRings(extent) {
  const steps = [5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000];
  const step = steps.find((s) => extent / s <= 4) || Math.ceil(extent / 4);
  const rings = [];
  for (let r = step; r < extent; r += step) rings.push(r);
  return rings;
}

// ---------------------------------------------------------------- decisions

async function decide(id, decision) {
  const comment = $("comment").value.trim();
  if (!comment) {
    say(() => t("needComment"), "error");
    $("comment").focus();
    return;
  }
  for (const button of document.querySelectorAll("#approve, #reject")) button.disabled = true;
  const { status, body } = await api("POST", `/v1/backoffice/queue/${id}/decision`, { decision, comment });
  if (status === 200) {
    say(() => t("entryDecided")(id, statusText(body)), "ok");
    await renderEntry(body);
    await loadQueue();
    return;
  }
  for (const button of document.querySelectorAll("#approve, #reject")) button.disabled = false;
  if (status === 409) {
    say(`${t("alreadyDecided")(id)}: ${errorText(body, status)}`, "error");
    await selectEntry(id);
    await loadQueue();
  } else if (status !== 401) {
    say(`${t("decisionRefused")}: ${errorText(body, status)}`, "error");
  }
}

// ---------------------------------------------------------------- timeline and search

async function appendTimeline(parent, s10) {
  const { status, body } = await api("GET", `/v1/backoffice/items/${encodeURIComponent(s10)}`);
  if (status !== 200) {
    parent.append(el("p", { class: "error", text: `${t("noTimeline")}: ${errorText(body, status)}` }));
    return;
  }
  const rows = [];
  for (const event of body.item.events) {
    // The reason (EMH) and how it was delivered (EMI) are outcome codes; other actions are the
    // server's sentences, which the attempt's own row says in words.
    const why = [event.reason, event.action].filter((code) => code && word("outcomes", code) !== code).map((code) => word("outcomes", code)).join(" · ");
    rows.push({ at: event.at_ms, code: event.code, text: `${word("events", event.code)}${why ? ` (${why})` : ""}` });
  }
  for (const attempt of body.attempts) {
    const where = attempt.distance_m === null || attempt.distance_m === undefined ? t("noPosition") : t("metresFromPin")(Math.round(attempt.distance_m));
    rows.push({ at: attempt.recorded_at_ms, code: "attempt", text: `${word("outcomes", attempt.outcome)}, ${where} (${attempt.postman})` });
  }
  for (const choice of body.choices) {
    rows.push({ at: choice.made_at_ms, code: "choice", text: `${t("customerChose")}${word("choice_kinds", choice.kind)}${choice.applicable ? "" : t("cannotApply")}` });
  }
  for (const dispute of body.disputes || []) {
    rows.push({ at: dispute.opened_at_ms, code: "dispute", text: `${t("disputed")}“${dispute.comment}”` });
    if (dispute.decided_at_ms !== null && dispute.decided_at_ms !== undefined) {
      rows.push({ at: dispute.decided_at_ms, code: "decision", text: `${t("disputeDecision")}${word("entry_statuses", dispute.status)}${dispute.answer ? ` : ${dispute.answer}` : ""}` });
    }
  }
  rows.sort((a, b) => a.at - b.at);
  const list = el("ol", { id: "timeline", class: "timeline", "data-item": s10 });
  for (const row of rows) {
    list.append(el("li", { "data-code": row.code }, el("time", { text: when(row.at) }), el("span", { text: row.text })));
  }
  if (rows.length === 0) list.append(el("li", { class: "empty", text: t("noEvent") }));
  parent.append(
    facts([
      [t("status"), word("statuses", body.item.status)],
      [t("address"), body.address ? body.address.lines.join(", ") : undefined],
    ]),
    list,
  );
}

async function showItem(s10) {
  state.selected = null;
  state.entry = null;
  state.shownItem = s10;
  placeMap();
  const detail = $("detail");
  detail.replaceChildren(el("h2", { text: `${t("itemTitle")}${s10}` }));
  delete detail.dataset.queueId;
  await appendTimeline(detail, s10);
}

async function search(event) {
  event.preventDefault();
  const params = new URLSearchParams();
  for (const name of ["s10", "address", "postman", "round", "date"]) {
    const value = $(`search-${name}`).value.trim();
    if (value) params.set(name, value);
  }
  if ([...params].length === 0) {
    say(() => t("giveOne"), "error");
    return;
  }
  await searchPage(`/v1/backoffice/search?${params}`, false);
}

async function searchPage(url, append) {
  const { status, body, next } = await api("GET", url);
  const list = $("search-results");
  if (!append) list.replaceChildren();
  if (status !== 200) {
    if (status !== 401) say(`${t("searchRefused")}: ${errorText(body, status)}`, "error");
    return;
  }
  state.searchNext = next;
  $("search-more").hidden = !next;
  for (const row of body) {
    list.append(
      el(
        "li",
        { "data-item": row.item_id },
        el(
          "button",
          { type: "button", onclick: () => showItem(row.item_id) },
          el("span", { class: "subject", text: row.item_id }),
          el("span", { class: "reason", text: row.address }),
          el("span", { class: "state", text: [word("statuses", row.status), row.postman, row.date && day(row.date)].filter(Boolean).join(" · ") }),
        ),
      ),
    );
  }
  const shown = list.querySelectorAll("li[data-item]").length;
  say(() => t("found")(shown, Boolean(next)));
  if (shown === 0) list.append(el("li", { class: "empty", text: t("noMatch") }));
}

// ---------------------------------------------------------------- wiring

document.addEventListener("DOMContentLoaded", async () => {
  applyLanguage();
  say(() => t("signInFirst"));
  $("language").addEventListener("click", switchLanguage);
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (token) signIn(token);
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("refresh").addEventListener("click", loadQueue);
  $("queue-more").addEventListener("click", moreQueue);
  $("search-more").addEventListener("click", () => state.searchNext && searchPage(state.searchNext, true));
  $("kind-filter").addEventListener("change", loadQueue);
  $("status-filter").addEventListener("change", loadQueue);
  $("search-form").addEventListener("submit", search);
  await loadWords();
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved);
});

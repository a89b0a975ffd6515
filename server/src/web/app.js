// The back-office page: works the review queue through the server's own API.
// Everything the server sends is put on the page with textContent, never as markup.
"use strict";

const TOKEN_KEY = "tournee.backoffice.token";
const SVG_NS = "http://www.w3.org/2000/svg";

const state = { token: null, selected: null };

const $ = (id) => document.getElementById(id);

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

function say(message, kind) {
  const status = $("status");
  status.textContent = message;
  status.className = "status" + (kind ? " " + kind : "");
}

function when(ms) {
  if (ms === null || ms === undefined) return "—";
  return new Date(ms).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function show(value) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "object") {
    if ("lat" in value && "lon" in value) return `${value.lat.toFixed(6)}, ${value.lon.toFixed(6)}`;
    return JSON.stringify(value);
  }
  return String(value);
}

/** Calls the API with the signed-in token; returns { status, body }. */
async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    say(`The server cannot be reached: ${error.message}`, "error");
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
    signOut(`Signed out: ${errorText(parsed, response.status)}`);
  }
  return { status: response.status, body: parsed };
}

function errorText(body, status) {
  if (body && typeof body.message === "string") return body.message;
  return `HTTP ${status}`;
}

// ---------------------------------------------------------------- sign-in

async function signIn(token) {
  state.token = token;
  const { status, body } = await api("GET", "/v1/backoffice/queue?status=open");
  if (status !== 200) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    say(status === 403 ? "This token is not a back-office token." : `Sign-in refused: ${errorText(body, status)}`, "error");
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("sign-in-form").hidden = true;
  $("signed-in").hidden = false;
  $("who").textContent = `Signed in as ${subjectOf(token)}`;
  $("workspace").hidden = false;
  renderQueue(body);
  say(`${body.length} open ${body.length === 1 ? "entry" : "entries"} in the queue.`);
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
  sessionStorage.removeItem(TOKEN_KEY);
  $("sign-in-form").hidden = false;
  $("signed-in").hidden = true;
  $("workspace").hidden = true;
  $("token").value = "";
  $("queue").replaceChildren();
  $("search-results").replaceChildren();
  $("detail").replaceChildren(el("p", { class: "empty", text: "Choose an entry of the queue or a search result." }));
  say(message || "Signed out.");
}

// ---------------------------------------------------------------- queue

async function loadQueue() {
  const params = new URLSearchParams();
  if ($("kind-filter").value) params.set("kind", $("kind-filter").value);
  params.set("status", $("status-filter").value);
  const { status, body } = await api("GET", `/v1/backoffice/queue?${params}`);
  if (status !== 200) {
    if (status !== 401) say(`The queue cannot be read: ${errorText(body, status)}`, "error");
    return;
  }
  renderQueue(body);
}

const KIND_LABEL = { correction: "Correction", attempt: "Flagged attempt", dispute: "Dispute" };

function renderQueue(entries) {
  const list = $("queue");
  list.replaceChildren();
  if (entries.length === 0) {
    list.append(el("li", { class: "empty", text: "Nothing here." }));
    return;
  }
  for (const entry of entries) {
    const subject = entry.item_id || entry.delivery_point_id || entry.subject_id;
    const item = el(
      "li",
      { "data-queue-id": entry.id, "data-kind": entry.kind, "data-status": entry.status, class: entry.id === state.selected ? "selected" : "" },
      el(
        "button",
        { type: "button", onclick: () => selectEntry(entry.id) },
        el("span", { class: `badge ${entry.kind}`, text: KIND_LABEL[entry.kind] || entry.kind }),
        el("span", { class: "subject", text: subject }),
        el("span", { class: "reason", text: entry.reason }),
        el("span", { class: `state ${entry.status}`, text: entry.auto ? `${entry.status} (corroborated)` : entry.status }),
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
    if (status !== 401) say(`Entry ${id} cannot be read: ${errorText(body, status)}`, "error");
    return;
  }
  await renderEntry(body);
}

// ---------------------------------------------------------------- one entry

async function renderEntry(entry) {
  const detail = $("detail");
  detail.replaceChildren();
  detail.dataset.queueId = entry.id;
  detail.append(
    el("h2", {}, `${KIND_LABEL[entry.kind] || entry.kind} #${entry.id}`, el("span", { class: `state ${entry.status}`, id: "entry-status", text: entry.status })),
    el("p", { class: "reason", text: entry.reason }),
    facts([
      ["Queued", when(entry.created_ms)],
      ["Delivery point", entry.delivery_point_id],
      ["Item", entry.item_id],
      ["Reference pin", entry.pin],
    ]),
  );

  if (entry.correction) detail.append(correctionView(entry.correction));
  if (entry.attempt) detail.append(attemptView(entry.attempt), proofsView(entry.attempt.proofs));
  if (entry.dispute) {
    detail.append(
      el("h3", { text: "The customer says" }),
      el("blockquote", { class: "dispute" }, el("p", { text: entry.dispute.comment }), el("footer", { text: entry.dispute.customer })),
    );
  }

  const figure = positionFigure(entry);
  detail.append(el("h3", { text: "Position against the pin" }), figure);

  if (entry.status === "open") {
    const form = $("decision-template").content.firstElementChild.cloneNode(true);
    detail.append(el("h3", { text: "Decision" }), el("p", { class: "hint", id: "decision-hint", text: DECISION_HINT[entry.kind] || "" }), form);
    form.querySelector("#approve").addEventListener("click", () => decide(entry.id, "approve"));
    form.querySelector("#reject").addEventListener("click", () => decide(entry.id, "reject"));
  } else {
    detail.append(
      el("h3", { text: "Decision" }),
      facts([
        ["Decision", entry.auto ? `${entry.status}, by corroboration` : entry.status],
        ["By", entry.decided_by],
        ["When", when(entry.decided_at_ms)],
        ["Comment", entry.comment],
      ]),
    );
  }

  if (entry.item_id) {
    detail.append(el("h3", { text: `Timeline of ${entry.item_id}` }));
    await appendTimeline(detail, entry.item_id);
  }
}

const DECISION_HINT = {
  correction: "Approve to publish the proposed fields as the delivery point's reference data; every phone gets them at its next sync. The postman sees your comment either way.",
  attempt: "Approve if the attempt stands as recorded; reject if it should not have been recorded there.",
  dispute: "Approve if the customer is right and the attempt was not made as recorded; reject if the attempt stands.",
};

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
    el("thead", {}, el("tr", {}, el("th", { text: "Field" }), el("th", { text: "Now" }), el("th", { text: "Proposed" }))),
  );
  const body = el("tbody");
  for (const field of FIELDS) {
    const value = proposed[field];
    if (value === null || value === undefined) continue;
    body.append(
      el(
        "tr",
        { "data-field": field },
        el("th", { text: field.replace(/_/g, " ") }),
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
    el("h3", { text: "Proposed correction" }),
    facts([
      ["Proposed by", `${correction.proposed_by} (device ${correction.device})`],
      ["When", when(correction.proposed_at_ms)],
      ["Same proposal", `${agreeing} ${agreeing === 1 ? "proposal" : "proposals"} by ${correction.proposers.join(", ") || correction.proposed_by}`],
      ["Current address", (current.lines || []).join(", ")],
      ["Current access", `door code ${show(access.door_code)} · floor ${show(access.floor)} · mailbox ${show(access.mailbox_position)}`],
    ]),
    table,
  );
}

function attemptView(attempt) {
  const notice = attempt.notice || {};
  const waits = notice.waits_at;
  return el(
    "div",
    {},
    el("h3", { text: "Attempt" }),
    facts([
      ["Outcome", attempt.outcome],
      ["At the door", when(attempt.recorded_at_ms)],
      ["Postman", `${attempt.postman} (device ${attempt.device})`],
      ["Position", attempt.position ? `${show(attempt.position)}${attempt.position.accuracy_m ? ` ± ${Math.round(attempt.position.accuracy_m)} m` : ""}` : "not recorded"],
      ["Distance to pin", attempt.distance_m === null || attempt.distance_m === undefined ? "unknown" : `${Math.round(attempt.distance_m)} m`],
      ["Notice number", notice.number],
      ["Waits at", waits ? `${waits.kind} ${waits.place_id}${waits.until ? ` until ${waits.until}` : ""}` : undefined],
    ]),
  );
}

/**
 * The photos and signature an attempt names, as images beside it (issue #16). Each file is
 * fetched with the token (the route needs it) and shown as a data: URL, which the page's policy
 * allows for images; a proof not uploaded yet, or deleted after retention, says so.
 */
function proofsView(proofs) {
  const box = el("div", { class: "proofs", id: "proofs" }, el("h3", { text: "Proofs" }));
  if (!proofs || proofs.length === 0) box.append(el("p", { class: "empty", text: "No photo or signature." }));
  for (const proof of proofs || []) {
    const label = `${proof.kind} ${proof.sha256.slice(0, 12)}…`;
    const figure = el("figure", { class: "proof", "data-sha256": proof.sha256 }, el("figcaption", { text: label }));
    box.append(figure);
    if (!proof.url) {
      figure.append(el("p", { class: "empty", text: "not uploaded by the phone, or deleted after retention" }));
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
      .then((src) => figure.prepend(el("img", { src, alt: `${proof.kind} taken at the door` })))
      .catch((error) => figure.append(el("p", { class: "empty", text: `could not be loaded (${error.message})` })));
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

function positionFigure(entry) {
  const pin = entry.pin;
  let other = null;
  let label = "";
  let accuracy = 0;
  let distance = null;
  if (entry.attempt && entry.attempt.position) {
    other = entry.attempt.position;
    label = "attempt";
    accuracy = other.accuracy_m || 0;
    distance = entry.attempt.distance_m;
  } else if (entry.correction && entry.correction.proposed && entry.correction.proposed.pin) {
    other = entry.correction.proposed.pin;
    label = "proposed pin";
  }
  if (!pin || !other) {
    const missing = !pin ? "The delivery point has no reference pin." : "No position was recorded.";
    return el("p", { class: "no-position", id: "position-missing", text: missing });
  }
  const d = offset(pin, other);
  if (distance === null || distance === undefined) distance = Math.hypot(d.x, d.y);

  const width = 360;
  const height = 260;
  const half = Math.min(width, height) / 2 - 24;
  const extent = Math.max(Math.abs(d.x), Math.abs(d.y), accuracy, 10) * 1.25;
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
  root.append(svg("title", {}, `The ${label} is ${Math.round(distance)} m from the pin`));
  root.append(svg("rect", { x: 0, y: 0, width, height, class: "ground" }));
  for (const ring of niceRings(extent)) {
    root.append(svg("circle", { cx, cy, r: ring * scale, class: "ring" }));
    root.append(svg("text", { x: cx + ring * scale * 0.7071 + 3, y: cy - ring * scale * 0.7071 - 3, class: "ring-label" }, `${ring} m`));
  }
  if (accuracy > 0) root.append(svg("circle", { cx: px, cy: py, r: Math.max(accuracy * scale, 2), class: "accuracy" }));
  root.append(svg("line", { x1: cx, y1: cy, x2: px, y2: py, class: "gap" }));
  root.append(svg("circle", { cx, cy, r: 6, class: "pin", id: "pin-marker" }));
  root.append(svg("text", { x: cx + 9, y: cy + 16, class: "pin-label" }, "pin"));
  root.append(svg("circle", { cx: px, cy: py, r: 6, class: "seen", id: "attempt-marker" }));
  root.append(svg("text", { x: px + 9, y: py - 8, class: "seen-label" }, label));
  root.append(svg("text", { x: 10, y: height - 10, class: "distance" }, `${Math.round(distance)} m from the pin`));
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
    say("A decision needs a comment.", "error");
    $("comment").focus();
    return;
  }
  for (const button of document.querySelectorAll("#approve, #reject")) button.disabled = true;
  const { status, body } = await api("POST", `/v1/backoffice/queue/${id}/decision`, { decision, comment });
  if (status === 200) {
    say(`Entry #${id} ${body.status}.`, "ok");
    await renderEntry(body);
    await loadQueue();
    return;
  }
  for (const button of document.querySelectorAll("#approve, #reject")) button.disabled = false;
  if (status === 409) {
    say(`Entry #${id} was already decided: ${errorText(body, status)}`, "error");
    await selectEntry(id);
    await loadQueue();
  } else if (status !== 401) {
    say(`The decision was refused: ${errorText(body, status)}`, "error");
  }
}

// ---------------------------------------------------------------- timeline and search

const EVENT_LABEL = {
  EMG: "arrived at the delivery office",
  EDG: "out for delivery",
  EMH: "delivery attempted",
  EDH: "waiting at a pickup point",
  EMI: "delivered",
};

async function appendTimeline(parent, s10) {
  const { status, body } = await api("GET", `/v1/backoffice/items/${encodeURIComponent(s10)}`);
  if (status !== 200) {
    parent.append(el("p", { class: "error", text: `No timeline: ${errorText(body, status)}` }));
    return;
  }
  const rows = [];
  for (const event of body.item.events) {
    const extra = [event.reason, event.action].filter(Boolean).join(" · ");
    rows.push({ at: event.at_ms, code: event.code, text: `${EVENT_LABEL[event.code] || event.code}${extra ? ` (${extra})` : ""}` });
  }
  for (const attempt of body.attempts) {
    const where = attempt.distance_m === null || attempt.distance_m === undefined ? "no position" : `${Math.round(attempt.distance_m)} m from the pin`;
    rows.push({ at: attempt.recorded_at_ms, code: "attempt", text: `${attempt.postman}: ${attempt.outcome}, ${where}` });
  }
  for (const choice of body.choices) {
    rows.push({ at: choice.made_at_ms, code: "choice", text: `customer chose ${choice.kind.replace(/_/g, " ")}${choice.applicable ? "" : ` (cannot apply: ${choice.reason})`}` });
  }
  for (const dispute of body.disputes || []) {
    rows.push({ at: dispute.opened_at_ms, code: "dispute", text: `customer disputed attempt ${dispute.attempt_id}: “${dispute.comment}”` });
    if (dispute.decided_at_ms !== null && dispute.decided_at_ms !== undefined) {
      rows.push({ at: dispute.decided_at_ms, code: "decision", text: `dispute ${dispute.status}${dispute.answer ? `: ${dispute.answer}` : ""}` });
    }
  }
  rows.sort((a, b) => a.at - b.at);
  const list = el("ol", { id: "timeline", class: "timeline", "data-item": s10 });
  for (const row of rows) {
    list.append(el("li", { "data-code": row.code }, el("time", { text: when(row.at) }), el("span", { class: "code", text: row.code }), el("span", { text: row.text })));
  }
  if (rows.length === 0) list.append(el("li", { class: "empty", text: "No event yet." }));
  parent.append(
    facts([
      ["Status", `${body.item.status.replace(/_/g, " ")} (${body.item.status_code})`],
      ["Address", body.address ? body.address.lines.join(", ") : undefined],
    ]),
    list,
  );
}

async function showItem(s10) {
  state.selected = null;
  const detail = $("detail");
  detail.replaceChildren(el("h2", { text: `Item ${s10}` }));
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
    say("Give at least one search field.", "error");
    return;
  }
  const { status, body } = await api("GET", `/v1/backoffice/search?${params}`);
  const list = $("search-results");
  list.replaceChildren();
  if (status !== 200) {
    if (status !== 401) say(`Search refused: ${errorText(body, status)}`, "error");
    return;
  }
  say(`${body.length} ${body.length === 1 ? "item" : "items"} found.`);
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
          el("span", { class: "state", text: [row.status, row.postman, row.date].filter(Boolean).join(" · ") }),
        ),
      ),
    );
  }
  if (body.length === 0) list.append(el("li", { class: "empty", text: "No item matches." }));
}

// ---------------------------------------------------------------- wiring

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (token) signIn(token);
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("refresh").addEventListener("click", loadQueue);
  $("kind-filter").addEventListener("change", loadQueue);
  $("status-filter").addEventListener("change", loadQueue);
  $("search-form").addEventListener("submit", search);
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved);
});

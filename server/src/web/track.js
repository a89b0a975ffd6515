// The public tracking page: a customer without an account tracks an item by its number (or the
// notice card's) and the postcode, reads where it waits, and makes the card's one choice. Every
// domain word comes from the server in the page's language (Accept-Language); this script only
// holds its own labels. Server data is written with textContent only.
"use strict";

const WORDS = {
  fr: {
    subtitle: "Suivi de votre envoi",
    lookupTitle: "Suivre un envoi",
    lookupHelp: "Saisissez le numéro de suivi (ex. RR123456785FR) ou le numéro de l'avis de passage, et le code postal de l'adresse de livraison.",
    numberLabel: "Numéro de suivi ou d'avis de passage",
    postcodeLabel: "Code postal",
    trackButton: "Suivre",
    waitingTitle: "Où le retirer",
    nextTitle: "Et maintenant ?",
    historyTitle: "Historique",
    chooseTitle: "Choisir une autre livraison",
    dateLabel: "Le jour de la nouvelle livraison",
    placesTitle: "Points de retrait",
    nearMe: "Près de moi",
    neighbourLabel: "Le nom du voisin et son étage",
    safePlaceLabel: "Où le déposer (abri, boîte à colis…)",
    confirm: "Confirmer mon choix",
    item: "Envoi",
    searching: "Recherche…",
    saving: "Enregistrement…",
    saved: "Votre choix est enregistré. Le facteur le recevra à sa prochaine synchronisation.",
    unchanged: "Ce choix était déjà enregistré.",
    until: "Jusqu'au",
    currentChoice: "Votre choix",
    noPlaces: "Aucun point de retrait trouvé.",
    pickOption: "Choisissez une option.",
    pickPlace: "Choisissez un point de retrait.",
    needText: "Précisez-le, s'il vous plaît.",
    needDate: "Choisissez un jour.",
    metres: (m) => (m >= 1000 ? `à ${(m / 1000).toFixed(1).replace(".", ",")} km` : `à ${m} m`),
    noLocation: "Votre position n'est pas disponible.",
    errors: {
      no_match: "Aucun envoi ne correspond à ce numéro et ce code postal. Vérifiez les deux sur l'avis de passage.",
      invalid_s10: "Ce numéro de suivi n'est pas valide : vérifiez-le (13 caractères, ex. RR123456785FR).",
      invalid_notice_number: "Ce numéro d'avis n'est pas valide : 4 à 32 lettres et chiffres.",
      invalid_postcode: "Le code postal compte cinq chiffres.",
      rate_limited: "Trop de recherches depuis votre connexion. Réessayez dans une minute.",
      already_delivered: "Cet envoi a déjà été livré : il n'y a plus de choix à faire.",
      date_in_the_past: "Ce jour est déjà passé.",
      beyond_holding_period: "Ce jour est après la fin de la période de garde.",
      unknown_pickup_point: "Ce point de retrait n'existe pas.",
      rule_violation: "Ce choix n'est pas possible pour cet envoi.",
      other: "Le service ne répond pas. Réessayez plus tard.",
    },
  },
  en: {
    subtitle: "Track your item",
    lookupTitle: "Track an item",
    lookupHelp: "Enter the tracking number (e.g. RR123456785FR) or the number on the notice card, and the postcode of the delivery address.",
    numberLabel: "Tracking or notice card number",
    postcodeLabel: "Postcode",
    trackButton: "Track",
    waitingTitle: "Where to collect it",
    nextTitle: "What next?",
    historyTitle: "History",
    chooseTitle: "Choose another delivery",
    dateLabel: "The day to deliver again",
    placesTitle: "Pickup points",
    nearMe: "Near me",
    neighbourLabel: "The neighbour's name and floor",
    safePlaceLabel: "Where to leave it (shed, parcel box…)",
    confirm: "Confirm my choice",
    item: "Item",
    searching: "Searching…",
    saving: "Saving…",
    saved: "Your choice is recorded. The postman receives it at their next sync.",
    unchanged: "This choice was recorded already.",
    until: "Until",
    currentChoice: "Your choice",
    noPlaces: "No pickup point found.",
    pickOption: "Pick an option.",
    pickPlace: "Pick a pickup point.",
    needText: "Please say where or who.",
    needDate: "Pick a day.",
    metres: (m) => (m >= 1000 ? `${(m / 1000).toFixed(1)} km away` : `${m} m away`),
    noLocation: "Your position is not available.",
    errors: {
      no_match: "No item matches this number and postcode. Check both on the notice card.",
      invalid_s10: "This tracking number is not valid: check it (13 characters, e.g. RR123456785FR).",
      invalid_notice_number: "This notice number is not valid: 4 to 32 letters and digits.",
      invalid_postcode: "A postcode has five digits.",
      rate_limited: "Too many searches from your connection. Try again in a minute.",
      already_delivered: "This item has been delivered already: there is nothing left to choose.",
      date_in_the_past: "That day is in the past.",
      beyond_holding_period: "That day is after the end of the holding period.",
      unknown_pickup_point: "That pickup point does not exist.",
      rule_violation: "This choice is not possible for this item.",
      other: "The service does not answer. Try again later.",
    },
  },
};

const $ = (id) => document.getElementById(id);
const S10_SHAPE = /^[A-Z]{2}[0-9]{9}[A-Z]{2}$/;

let lang = (() => {
  try {
    const saved = sessionStorage.getItem("tournee.lang");
    if (saved === "fr" || saved === "en") return saved;
  } catch (_) { /* storage off: the server's choice stands */ }
  return document.documentElement.lang === "en" ? "en" : "fr";
})();
// What the customer looked up: where to read the item and where to post the choice.
let current = null;
let places = [];
let placesFrom = null;
// Only the latest list of places asked for is shown, whatever order the answers come in.
let placesAsked = 0;

const t = (key) => WORDS[lang][key];

function applyLanguage() {
  document.documentElement.lang = lang;
  document.title = `Tournée · ${lang === "fr" ? "suivi" : "tracking"}`;
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  for (const button of document.querySelectorAll(".langs button")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
  }
}

function say(text, kind) {
  const status = $("status");
  status.hidden = !text;
  status.textContent = text || "";
  status.className = `status${kind ? ` ${kind}` : ""}`;
}

async function call(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "Accept-Language": lang, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error((data && data.message) || String(response.status));
    error.code = data && data.code;
    throw error;
  }
  return data;
}

function explain(error) {
  return t("errors")[error.code] || (error.code ? error.message : t("errors").other);
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function placeBox(place, extra) {
  const box = element("div");
  box.append(element("div", "name", place.name), element("div", "kind", place.kind_text));
  for (const line of place.lines) if (line !== place.name) box.append(element("div", "line", line));
  if (place.distance_m !== null && place.distance_m !== undefined) {
    box.append(element("div", "distance", t("metres")(Math.round(place.distance_m))));
  }
  if (place.opening_hours_text.length) {
    const hours = element("ul", "hours");
    for (const line of place.opening_hours_text) hours.append(element("li", "", line));
    box.append(hours);
  }
  if (extra) box.append(extra);
  return box;
}

function render(item) {
  $("result").hidden = false;
  $("result").dataset.status = item.status;
  $("item-number").textContent = `${t("item")} ${item.s10}`;
  $("status-text").textContent = item.status_text;

  const choice = $("choice-now");
  choice.hidden = !item.choice;
  choice.textContent = item.choice ? `${t("currentChoice")}${lang === "fr" ? " : " : ": "}${item.choice.text}` : "";

  const waiting = $("waiting-place");
  waiting.replaceChildren();
  $("waiting").hidden = !item.waits_at;
  if (item.waits_at) {
    const until = item.waits_at.until_text ? element("div", "until", `${t("until")} ${item.waits_at.until_text}`) : null;
    waiting.append(item.waits_at.place ? placeBox(item.waits_at.place, until) : element("div", "name", item.waits_at.kind_text));
    if (!item.waits_at.place && until) waiting.append(until);
  }

  $("next-steps").replaceChildren(...item.next_steps.map((s) => element("li", "", s)));
  $("events").replaceChildren(
    ...item.events.map((e) => {
      const li = element("li");
      li.dataset.code = e.code;
      li.append(element("span", "what", e.what), element("time", "when", e.when));
      li.lastChild.setAttribute("datetime", e.at);
      return li;
    }),
  );
  renderOptions(item);
}

function renderOptions(item) {
  const section = $("choose");
  section.hidden = item.options.length === 0;
  const fieldset = $("options");
  const legend = fieldset.querySelector("legend");
  const previous = fieldset.querySelector("input:checked");
  fieldset.replaceChildren(legend);
  for (const option of item.options) {
    const label = element("label", `option${option.allowed ? "" : " forbidden"}`);
    const input = element("input");
    input.type = "radio";
    input.name = "kind";
    input.value = option.kind;
    input.disabled = !option.allowed;
    input.checked = previous && previous.value === option.kind && option.allowed;
    label.append(input, element("span", "text", option.text));
    if (option.reason) label.append(element("span", "reason", option.reason));
    fieldset.append(label);
  }
  if (item.redeliver_between) {
    $("date").min = item.redeliver_between[0];
    $("date").max = item.redeliver_between[1];
  }
  showDetail();
}

function chosenKind() {
  const checked = $("options").querySelector("input:checked");
  return checked ? checked.value : null;
}

function showDetail() {
  const kind = chosenKind();
  for (const detail of document.querySelectorAll(".option-detail")) {
    detail.hidden = detail.id !== `detail-${kind}`;
  }
  if (kind === "pickup_point" && places.length === 0) loadPlaces(null);
}

async function loadPlaces(near) {
  const query = near ? `near=${near.lat},${near.lon}` : `postcode=${encodeURIComponent(current.postcode)}`;
  const asked = ++placesAsked;
  try {
    const data = await call("GET", `/v1/pickup-points?${query}&limit=8`);
    if (asked !== placesAsked) return;
    places = data.places;
    placesFrom = near;
    renderPlaces();
  } catch (error) {
    say(explain(error), "error");
  }
}

function renderPlaces() {
  const list = $("places");
  const previous = list.querySelector("input:checked");
  list.replaceChildren();
  if (places.length === 0) list.append(element("li", "help", t("noPlaces")));
  for (const place of places) {
    const li = element("li", "place");
    const label = element("label");
    const input = element("input");
    input.type = "radio";
    input.name = "place";
    input.value = place.id;
    input.checked = previous && previous.value === place.id;
    label.append(input, placeBox(place));
    li.append(label);
    list.append(li);
  }
}

async function lookup(event) {
  if (event) event.preventDefault();
  const number = $("number").value.replace(/\s+/g, "").toUpperCase();
  const postcode = $("postcode").value.trim();
  if (!/^[0-9]{5}$/.test(postcode)) {
    say(t("errors").invalid_postcode, "error");
    return;
  }
  const path = S10_SHAPE.test(number)
    ? `/v1/track/${encodeURIComponent(number)}`
    : `/v1/notices/${encodeURIComponent(number)}`;
  say(t("searching"));
  try {
    const item = await call("GET", `${path}?postcode=${postcode}`);
    const same = current && current.path === path && current.postcode === postcode;
    current = { path, postcode, item };
    $("number").value = number;
    if (!same) {
      places = [];
      placesFrom = null;
    }
    say("");
    render(item);
  } catch (error) {
    current = null;
    $("result").hidden = true;
    $("choose").hidden = true;
    say(explain(error), "error");
  }
}

function choiceBody() {
  const kind = chosenKind();
  if (!kind) return { error: t("pickOption") };
  switch (kind) {
    case "redeliver_on":
      return $("date").value ? { kind, date: $("date").value } : { error: t("needDate") };
    case "pickup_point": {
      const place = $("places").querySelector("input:checked");
      return place ? { kind, pickup_point: place.value } : { error: t("pickPlace") };
    }
    case "neighbour":
      return $("neighbour").value.trim() ? { kind, neighbour: $("neighbour").value.trim() } : { error: t("needText") };
    case "safe_place":
      return $("safe-place").value.trim() ? { kind, place: $("safe-place").value.trim() } : { error: t("needText") };
    default:
      return { kind };
  }
}

async function choose(event) {
  event.preventDefault();
  if (!current) return;
  const choice = choiceBody();
  if (choice.error) {
    say(choice.error, "error");
    return;
  }
  say(t("saving"));
  try {
    const made = await call("POST", `${current.path}/choice`, { postcode: current.postcode, choice });
    current.item = made.tracking;
    render(made.tracking);
    say(made.written ? t("saved") : t("unchanged"), "ok");
    $("status").dataset.choiceId = made.choice_id;
  } catch (error) {
    say(explain(error), "error");
  }
}

function switchLanguage(to) {
  lang = to;
  try {
    sessionStorage.setItem("tournee.lang", to);
  } catch (_) { /* storage off: the switch lasts for this page */ }
  applyLanguage();
  say("");
  if (current) {
    // The item and the places again, in the new language; the places from where they were.
    lookup().then(() => {
      if (places.length) loadPlaces(placesFrom);
    });
  }
}

function nearMe() {
  if (!navigator.geolocation) {
    say(t("noLocation"), "error");
    return;
  }
  navigator.geolocation.getCurrentPosition(
    (position) => loadPlaces({
      lat: position.coords.latitude.toFixed(5),
      lon: position.coords.longitude.toFixed(5),
    }),
    () => say(t("noLocation"), "error"),
    { timeout: 10000 },
  );
}

document.addEventListener("DOMContentLoaded", () => {
  applyLanguage();
  $("lookup-form").addEventListener("submit", lookup);
  $("choice-form").addEventListener("submit", choose);
  $("options").addEventListener("change", showDetail);
  $("near-me").addEventListener("click", nearMe);
  for (const button of document.querySelectorAll(".langs button")) {
    button.addEventListener("click", () => switchLanguage(button.dataset.lang));
  }
  // A link from a message can carry both: ?number=…&postcode=…
  const params = new URLSearchParams(location.search);
  if (params.get("number") && params.get("postcode")) {
    $("number").value = params.get("number");
    $("postcode").value = params.get("postcode");
    lookup();
  }
});

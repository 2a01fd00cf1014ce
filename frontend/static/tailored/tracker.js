/* Tailored tracker: plain JS, no build step. */
(function () {
"use strict";
// Settings: this tag's data-tl-*, else <body>'s (older pages).
var d = document, body = d.body, page = body.dataset, nav = navigator, tag = d.currentScript;
var conf = tag?.dataset.tlEndpoint ? tag.dataset : page, endpoint = conf.tlEndpoint || "/api/events";
// <body> keeps the consent state, for the site's CSS and JS.
page.tlConsent = conf.tlConsent || "unset";
var TYPE = "application/json", queue = [], sent = 0, timer = 0, retryTimer = 0, backoff = 5e3, viewed;

function allowed() { return page.tlConsent === "granted" && !nav.globalPrivacyControl; }
function product(el) { return +(el.closest("[data-tl-product]") || body).dataset.tlProduct || undefined; }
function json(events) { return JSON.stringify({ events }); }
function on(el, type, fn, capture) { el.addEventListener(type, fn, capture); }

// localStorage may be unavailable or full: we keep less.
function load(key) { try { return JSON.parse(localStorage.getItem(key)); } catch (e) {} }
function save(key, value) { try { value ? localStorage.setItem(key, JSON.stringify(value)) : localStorage.removeItem(key); } catch (e) {} }

// tl_tz (the visitor's zone, for dayparts) is kept with consent only.
function hint() {
  var tz = allowed() && encodeURIComponent(Intl.DateTimeFormat().resolvedOptions().timeZone), cookie = "tl_tz=" + (tz || "");
  if (!tz === d.cookie.includes(cookie)) d.cookie = cookie + ";path=/;SameSite=Lax;max-age=" + (tz ? 15552e3 : 0);
}

function track(type, fields) {
  if (!allowed()) return null;
  var event = { type, ts: Date.now(), url: location.pathname, category: page.tlCategory };
  // Ids make a resend idempotent; randomUUID needs a secure context.
  event.id = crypto.randomUUID ? crypto.randomUUID() : Math.random().toString(36).slice(2) + event.ts;
  for (var key in fields) event[key] = fields[key];  // undefined values vanish in JSON
  queue.push(event);
  if (queue.length >= 20) flush();
  else timer = timer || setTimeout(flush, 2e3);
  return event;
}

// At most 100 events and 64 KiB per batch: halve until it fits.
function batches(events) {
  if (events.length <= 100 && new Blob([json(events)]).size < 6e4) return [events];
  var half = Math.ceil(events.length / 2);
  return events.length < 2 ? [] : batches(events.slice(0, half)).concat(batches(events.slice(half)));
}

// Unsent events (max 200, oldest dropped and counted) wait for a retry.
function stash(events) {
  if (!allowed()) return;  // withdrawn meanwhile
  var stored = (load("tl_queue") || []).concat(events), over = stored.length - 200;
  if (over > 0) { stored = stored.slice(over); save("tl_dropped", (load("tl_dropped") || 0) + over); }
  save("tl_queue", stored);
  retryTimer = retryTimer || setTimeout(() => { retryTimer = 0; backoff = Math.min(backoff * 2, 3e5); flush(); }, backoff);
}

// One batch at a time: keeps the order and the 64 KiB keepalive budget.
function post(list) {
  var batch = list.shift();
  batch && fetch(endpoint, { method: "POST", keepalive: true, headers: { "Content-Type": TYPE }, body: json(batch) }).then(r => {
    if (r.ok) { sent += batch.length; backoff = 5e3; }
    // 429 and 5xx may pass later; a 400 or 403 never will.
    else if (r.status === 429 || r.status >= 500) stash(batch);
  }, () => stash(batch)).then(() => post(list));
}

function beacon(batch) {
  if (!nav.sendBeacon(endpoint, new Blob([json(batch)], { type: TYPE }))) stash(batch);
}

// The queue plus what earlier pages stored; a page going away beacons.
function flush(leaving) {
  clearTimeout(timer); timer = 0;
  var events = allowed() ? (load("tl_queue") || []).concat(queue) : (save("tl_dropped"), []);
  queue = []; save("tl_queue");
  if (!events.length) return;
  if (nav.onLine === false) stash(events);
  else leaving === true ? batches(events).forEach(beacon) : post(batches(events));
}

function start() {
  hint();
  // Once per page, also when consent comes later.
  if (!viewed) viewed = track("page_view", { product_id: product(body), page_type: page.tlPageType });
  flush();
}

// Repeat clicks on one element within 400 ms count once.
var lastEl, lastAt = 0;
on(d, "click", e => {
  var el = e.target.closest("[data-track],[data-tl-action],[data-tl-feedback],[id],[role],a,button");
  if (!el || !allowed() || (el === lastEl && e.timeStamp - lastAt < 400)) return;
  lastEl = el; lastAt = e.timeStamp;
  var id = product(el), data = el.dataset, action = data.tlAction, add = action === "add_to_cart", vote = data.tlFeedback;
  var target = data.track || el.id || el.getAttribute("role") || (el.tagName === "A" ? "link" : el.tagName.toLowerCase());
  track("click", { target: target.slice(0, 128), x: e.pageX | 0, y: e.pageY | 0, product_id: id });
  if (!id) return;
  if (add || action === "remove_from_cart") track(action, { product_id: id, quantity: +data.tlQuantity || 1, price: add && +data.tlPrice || undefined });
  if (vote === "up" || vote === "down") {
    track("recommendation_feedback", { product_id: id, vote });
    for (var b of el.parentNode.children) b.setAttribute("aria-pressed", b === el);  // blocks.css thanks
  }
});

// Each depth once per page; measured at most every 200 ms.
var depths = [25, 50, 75, 100], scrollWait = 0;
on(window, "scroll", () => {
  scrollWait = scrollWait || setTimeout(() => {
    scrollWait = 0;
    var seen = (scrollY + innerHeight + 2) * 100 / d.documentElement.scrollHeight;
    while (allowed() && seen >= depths[0]) track("scroll_depth", { depth: depths.shift() });
  }, 200);
});

on(d, "submit", e => {
  var form = e.target, query = [...(form.elements.q?.value || "").trim()].slice(0, 200).join(""), name = form.id || form.getAttribute("name");
  if ("tlSearch" in form.dataset) query && track("search", { query });
  else if (name && !("tlConsentForm" in form.dataset)) track("form_submit", { form: name });
});

on(d, "change", e => {
  var f = e.target.closest("[data-tl-filter]");
  if (f) track("filter_change", { filter: f.dataset.tlFilter || e.target.name, value: e.target.value.slice(0, 128) });
});

// Media events do not bubble: capture them.
function media(e) {
  var m = e.target;
  track(e.type === "play" ? "video_play" : "video_pause", { video: (m.id || m.currentSrc).slice(0, 256), position: m.currentTime });
}
on(d, "play", media, true);
on(d, "pause", media, true);

// Dwell: visible seconds on the page and each [data-track-section].
var sections = [{ el: body, total: 0, visible: true, since: d.hidden ? 0 : Date.now() }];
function clock(s, now, stop) {
  if (s.since) s.total += (now - s.since) / 1e3;
  s.since = !stop && s.visible ? now : 0;
}
var observer = new IntersectionObserver(entries => {
  entries.forEach(en => { en.target._tl.visible = en.isIntersecting; clock(en.target._tl, Date.now(), d.hidden); });
});
d.querySelectorAll("[data-track-section]").forEach(el => {
  sections.push(el._tl = { el, name: el.dataset.trackSection, total: 0 });
  observer.observe(el);
});
function visibility(e) {
  var now = Date.now(), leaving = e.type === "pagehide" || d.hidden;
  sections.forEach(s => {
    clock(s, now, leaving);
    if (leaving && s.total) track("dwell", { seconds: +s.total.toFixed(1), section: s.name, product_id: product(s.el) });
    if (leaving) s.total = 0;
  });
  if (leaving) flush(true);
}
on(d, "visibilitychange", visibility);
on(window, "pagehide", visibility);
on(window, "online", flush);

// For consent platforms; resolves to {granted, reason, message}.
function setConsent(c) {
  return fetch(conf.tlConsentUrl || "/consent/", {
    method: "POST", headers: { "Content-Type": TYPE },
    body: JSON.stringify({ analytics: !!c.analytics, personalization: !!c.personalization })
  }).then(r => r.json()).then(a => {
    // Withdrawn: start() then forgets what was stored.
    if (a.granted) { page.tlConsent = a.granted[0] ? "granted" : "declined"; start(); }
    return a;
  });
}

window.tailored = {
  track, flush,
  stats: () => ({ queued: queue.length + (load("tl_queue") || []).length, dropped: load("tl_dropped") || 0, sent }),
  consent: { set: setConsent },
  privacy: { open: () => location.assign(conf.tlPrivacyUrl || "/privacy-centre/") }
};
start();
})();

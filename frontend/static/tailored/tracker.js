/* Tailored tracker: plain JS, no build step. */
(function () {
"use strict";
// Settings: this tag's data-tl-*, else <body>'s.
var d = document, body = d.body, page = body.dataset, nav = navigator, tag = d.currentScript, now = Date.now;
var conf = tag?.dataset.tlEndpoint ? tag.dataset : page, endpoint = conf.tlEndpoint || "/api/events";
page.tlConsent = conf.tlConsent || "unset";
var TYPE = "application/json", queue = [], sent = 0, timer = 0, retry = 0, backoff = 5e3, viewed;
function allowed() { return page.tlConsent === "granted" && !nav.globalPrivacyControl; }
function product(el) { return +(el.closest("[data-tl-product]") || body).dataset.tlProduct || void 0; }
function json(events) { return JSON.stringify({ events }); }
function on(el, t, f, c) { el.addEventListener(t, f, c); }
function send(url, body, keepalive) { return fetch(url, { method: "POST", keepalive, headers: { "Content-Type": TYPE }, body }); }
// localStorage may be off or full.
function load(key) { try { return JSON.parse(localStorage.getItem(key)); } catch (e) {} }
function save(key, value) { try { value ? localStorage.setItem(key, JSON.stringify(value)) : localStorage.removeItem(key); } catch (e) {} }
// tl_tz (for dayparts) only with consent.
function hint() {
  var tz = allowed() && encodeURIComponent(Intl.DateTimeFormat().resolvedOptions().timeZone), cookie = "tl_tz=" + (tz || "");
  if (!tz === d.cookie.includes(cookie)) d.cookie = cookie + ";path=/;SameSite=Lax;max-age=" + (tz ? 15552e3 : 0);
}
function track(type, fields) {
  if (!allowed()) return null;
  var event = { type, ts: now(), url: location.pathname, category: page.tlCategory };
  event.id = crypto.randomUUID ? crypto.randomUUID() : Math.random().toString(36).slice(2) + event.ts;
  Object.assign(event, fields);  // undefined vanishes in JSON
  queue.push(event);
  queue.length < 20 ? timer = timer || setTimeout(flush, 2e3) : flush();
  return event;
}
function batches(events) {
  if (events.length <= 100 && new Blob([json(events)]).size < 6e4) return [events];
  var half = Math.ceil(events.length / 2);
  return events.length < 2 ? [] : batches(events.slice(0, half)).concat(batches(events.slice(half)));
}
// Unsent events (max 200, oldest dropped) wait for a retry.
function stash(events) {
  if (!allowed()) return;  // withdrawn meanwhile
  var stored = (load("tl_queue") || []).concat(events), over = stored.length - 200;
  if (over > 0) { stored = stored.slice(over); save("tl_dropped", (load("tl_dropped") || 0) + over); }
  save("tl_queue", stored);
  retry = retry || setTimeout(() => { retry = 0; backoff = Math.min(backoff * 2, 3e5); flush(); }, backoff);
}
// One batch at a time: order, and keepalive's 64 KiB.
function post(list) {
  var batch = list.shift();
  batch && send(endpoint, json(batch), true).then(r => {
    if (r.ok) { sent += batch.length; backoff = 5e3; }
    // 429 and 5xx may pass later; 400 or 403 never.
    else if (r.status === 429 || r.status >= 500) stash(batch);
  }, () => stash(batch)).then(() => post(list));
}
function beacon(batch) { nav.sendBeacon(endpoint, new Blob([json(batch)], { type: TYPE })) || stash(batch); }
function flush(leaving) {
  clearTimeout(timer); timer = 0;
  var events = allowed() ? (load("tl_queue") || []).concat(queue) : (save("tl_dropped"), []);
  queue = []; save("tl_queue");
  if (!events.length) return;
  if (nav.onLine === false) stash(events);
  else leaving === true ? batches(events).forEach(beacon) : post(batches(events));
}
// The address's parameters rules remember for the visit (issue 18).
function kept(names) {
  return names && new URLSearchParams([...new URLSearchParams(location.search)].filter(p => names.split(" ").includes(p[0]))) + "" || void 0;
}
function start() {
  hint();
  // Once, also after late consent.
  viewed = viewed || track("page_view", { product_id: product(body), page_type: page.tlPageType, pages: conf.tlPages, keep: kept(conf.tlKeep) });
  flush();
}

// A decided block's choice, for its impression and first click (issue 17).
function decision({ dataset: s }) {
  return { block: s.tlBlockId, variant: s.tlVariant, experiment: s.tlExperiment, arm: s.tlArm, page: +s.tlPage || void 0 };
}
var DECIDED = "[data-tl-block-id]";
// Repeats within 400 ms count once.
var lastEl, lastAt = 0;
on(d, "click", e => {
  var el = e.target.closest("[data-track],[data-tl-action],[data-tl-feedback],[id],[role],a,button");
  if (!el || !allowed() || el === lastEl && e.timeStamp - lastAt < 400) return;
  lastEl = el; lastAt = e.timeStamp;
  var id = product(el), data = el.dataset, action = data.tlAction, add = action === "add_to_cart", vote = data.tlFeedback, w = el.closest(DECIDED);
  var target = data.track || el.id || el.getAttribute("role") || (el.tagName === "A" ? "link" : el.tagName.toLowerCase());
  track("click", { target: target.slice(0, 128), x: e.pageX | 0, y: e.pageY | 0, product_id: id, ...w && !w._tlc && (w._tlc = decision(w)) });
  if (!id) return;
  if (add || action === "remove_from_cart") track(action, { product_id: id, quantity: +data.tlQuantity || 1, price: add && +data.tlPrice || void 0 });
  if (vote === "up" || vote === "down") {
    track("recommendation_feedback", { product_id: id, vote });
    for (var b of el.parentNode.children) b.setAttribute("aria-pressed", b === el);  // blocks.css thanks
  }
});
var depths = [25, 50, 75, 100], wait = 0;
on(window, "scroll", () => {
  wait = wait || setTimeout(() => {
    wait = 0;
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
// Media events do not bubble.
function media(e) {
  var m = e.target;
  track(e.type === "play" ? "video_play" : "video_pause", { video: (m.id || m.currentSrc).slice(0, 256), position: m.currentTime });
}
on(d, "play", media, true);
on(d, "pause", media, true);

// Dwell: visible seconds of the page and [data-track-section]s. Impression: a decided block
// half in view 1 s at a stretch, once per page view.
var sections = [{ el: body, total: 0, visible: true, since: d.hidden ? 0 : now() }];
function clock(s, at, stop) {
  var t = s.since ? (at - s.since) / 1e3 : 0;
  s.total += t;
  if (s.block && !s.done && t >= 1) s.done = track("impression", { ...decision(s.el), seconds: +t.toFixed(1) });
  s.since = !stop && s.visible ? at : 0;
}
var observer = new IntersectionObserver(entries => {
  entries.forEach(en => { var s = en.target._tl; s.visible = s.block ? en.intersectionRatio >= .5 : en.isIntersecting; clock(s, now(), d.hidden); });
}, { threshold: [0, .5] });
d.querySelectorAll("[data-track-section]," + DECIDED).forEach(el => {
  sections.push(el._tl = { el, name: el.dataset.trackSection, total: 0, block: el.matches(DECIDED) });
  observer.observe(el);
});
function visibility(e) {
  var at = now(), leaving = e.type === "pagehide" || d.hidden;
  sections.forEach(s => {
    clock(s, at, leaving);
    if (leaving && s.total && !s.block) track("dwell", { seconds: +s.total.toFixed(1), section: s.name, product_id: product(s.el) });
    if (leaving) s.total = 0;
  });
  if (leaving) flush(true);
}
on(d, "visibilitychange", visibility);
on(window, "pagehide", visibility);
on(window, "online", flush);

// For consent platforms.
function setConsent(c) {
  return send(conf.tlConsentUrl || "/consent/", JSON.stringify({ analytics: !!c.analytics, personalization: !!c.personalization, marketing: !!c.marketing })).then(r => r.json()).then(a => {
    // Withdrawn: start() forgets the stash.
    if (a.granted) { page.tlConsent = a.granted[0] ? "granted" : "declined"; start(); }
    return a;
  });
}
window.tailored = {
  track, flush,
  stats: () => ({ queued: queue.length + (load("tl_queue") || []).length, dropped: load("tl_dropped") || 0, sent }),
  consent: { set: setConsent },
  // After a form: who the visitor is, for activation (issue 20); beside the events endpoint.
  identify: email => send(endpoint.replace(/events$/, "identify"), JSON.stringify({ email })).then(r => r.json()),
  privacy: { open: () => location.assign(conf.tlPrivacyUrl || "/privacy-centre/") }
};
start();
})();

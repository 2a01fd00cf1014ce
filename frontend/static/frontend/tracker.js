/* Tailored tracker: plain JavaScript, no build step.
 * Sends behavioural events to /api/events only after consent, and never when the browser
 * asks not to be tracked (Global Privacy Control). */
(function () {
  "use strict";
  var body = document.body;
  var endpoint = body.getAttribute("data-tl-endpoint") || "/api/events";

  // Timezone client hint: lets dayparts follow the visitor's clock. Not an identifier.
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && document.cookie.indexOf("tl_tz=" + encodeURIComponent(zone)) === -1) {
      document.cookie = "tl_tz=" + encodeURIComponent(zone) + ";path=/;max-age=31536000;SameSite=Lax";
    }
  } catch (e) { /* no Intl: the site's timezone is used */ }

  function trackingAllowed() {
    return body.getAttribute("data-tl-consent") === "granted" && navigator.globalPrivacyControl !== true;
  }

  function eventId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function send(events) {
    return fetch(endpoint, {
      method: "POST",
      credentials: "same-origin",
      keepalive: true,
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ events: events })
    });
  }

  function track(type, fields) {
    if (!trackingAllowed()) return null;
    var event = { type: type, id: eventId(), ts: Date.now(), url: location.pathname };
    for (var key in fields) { if (fields[key] !== undefined) event[key] = fields[key]; }
    return send([event]);
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  window.tailored = {
    track: track,
    consent: {
      /* For a consent-management platform: tailored.consent.set({analytics: true, personalization: true}) */
      set: function (choices) {
        return fetch("/consent/", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
          body: JSON.stringify({ analytics: !!choices.analytics, personalization: !!choices.personalization })
        }).then(function (response) {
          if (response.ok) body.setAttribute("data-tl-consent", choices.personalization ? "granted" : "declined");
          return response;
        });
      }
    }
  };

  var product = body.getAttribute("data-tl-product");
  track("page_view", {
    product_id: product ? parseInt(product, 10) : undefined,
    category: body.getAttribute("data-tl-category") || undefined
  });
})();

# Varnish (6.0 or later) in front of a Wagtail site with Tailored: the same policy as nginx.conf.
# Adapt the backend. tests/frontend/test_varnish_cache.py runs this very file.
#
# The app marks each page (X-Tailored-Cache says which): "shared" (Cache-Control public, the same
# for everyone), "audience" (public, Vary: X-Tailored-Audience: one copy per audience key) or
# "private" (never stored). vcl_recv computes the key and sends it to the app, which takes those
# four facts from it; Varnish's Vary then keeps one copy per key.
vcl 4.1;

import std;

backend default {
    .host = "127.0.0.1";  # adapt: where gunicorn listens
    .port = "8000";
}

# Who may purge: Wagtail's frontend cache invalidation (wagtail.contrib.frontend_cache with the
# HTTPBackend pointing here) sends PURGE <page URL> when a page is published; every audience's
# copy of the page goes (they are variants of one object).
acl purgers {
    "127.0.0.1";  # adapt: the hosts your Wagtail processes run on
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(405, "Not allowed"));
        }
        return (purge);
    }
    unset req.http.X-Tailored-Audience;  # the key is Varnish's, never a client's
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    if (req.url ~ "^/(admin|api|graphql|consent|privacy-centre)/") {
        return (pass);
    }
    # Visitors whose pages are their own: personalization or analytics granted (analytics alone
    # puts a visitor in experiments, which are measured, not targeted; a site that runs none may
    # drop it), or logged in (a session).
    if (req.http.Cookie ~ "(^|;\s*)tl_consent=[^;]*(personalization|analytics)" || req.http.Cookie ~ "(^|;\s*)sessionid=") {
        return (pass);
    }
    call tailored_audience;
    # Shared pages are the same for every other visitor: their cookies (the consent answer,
    # analytics) must not split the cache. tracker.js reads the consent cookie in the browser.
    unset req.http.Cookie;
    return (hash);
}

# Device class as tailored.context.device classifies it; country from the CDN (Cloudflare's
# CF-IPCountry here); daypart and weekday from Varnish's clock, which reads UTC: for a site in
# another zone, shift the hours in the daypart tests below.
sub tailored_audience {
    if (!req.http.User-Agent || req.http.User-Agent ~ "(?i)bot|crawl|spider|slurp|headlesschrome|lighthouse|preview") {
        set req.http.X-Tailored-Device = "bot";
    } elsif (req.http.User-Agent ~ "(?i)ipad|tablet|kindle|silk|playbook" || (req.http.User-Agent ~ "(?i)android" && req.http.User-Agent !~ "(?i)mobile")) {
        set req.http.X-Tailored-Device = "tablet";
    } elsif (req.http.User-Agent ~ "(?i)mobi|iphone|ipod|android|windows phone|blackberry|kaios") {
        set req.http.X-Tailored-Device = "mobile";
    } else {
        set req.http.X-Tailored-Device = "desktop";
    }
    if (req.http.CF-IPCountry ~ "^[A-Z]{2}$") {
        set req.http.X-Tailored-Country = req.http.CF-IPCountry;
    } else {
        set req.http.X-Tailored-Country = "-";
    }
    # `now` as a string is an HTTP date: "Sat, 05 Dec 2026 11:46:29 GMT".
    set req.http.X-Tailored-Now = "" + now;
    set req.http.X-Tailored-Hour = regsub(req.http.X-Tailored-Now, "^.* (\d\d):\d\d:\d\d .*$", "\1");
    if (req.http.X-Tailored-Hour ~ "^(0[5-9]|1[01])$") {
        set req.http.X-Tailored-Daypart = "morning";
    } elsif (req.http.X-Tailored-Hour ~ "^1[2-6]$") {
        set req.http.X-Tailored-Daypart = "afternoon";
    } elsif (req.http.X-Tailored-Hour ~ "^(1[7-9]|2[01])$") {
        set req.http.X-Tailored-Daypart = "evening";
    } else {
        set req.http.X-Tailored-Daypart = "night";
    }
    set req.http.X-Tailored-Weekday = std.tolower(regsub(req.http.X-Tailored-Now, "^(\w\w\w).*$", "\1"));
    set req.http.X-Tailored-Audience = req.http.X-Tailored-Device + "." + req.http.X-Tailored-Country + "." + req.http.X-Tailored-Daypart + "." + req.http.X-Tailored-Weekday;
    unset req.http.X-Tailored-Device;
    unset req.http.X-Tailored-Country;
    unset req.http.X-Tailored-Now;
    unset req.http.X-Tailored-Hour;
    unset req.http.X-Tailored-Daypart;
    unset req.http.X-Tailored-Weekday;
}

sub vcl_backend_response {
    # Only what the app made public is kept; private pages and responses setting a cookie pass.
    if (beresp.http.Cache-Control ~ "private" || beresp.http.Set-Cookie) {
        set beresp.uncacheable = true;
        set beresp.ttl = 120s;
        return (deliver);
    }
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache-Status = "HIT";
    } else {
        set resp.http.X-Cache-Status = "MISS";
    }
    set resp.http.X-Tailored-Audience = req.http.X-Tailored-Audience;
}

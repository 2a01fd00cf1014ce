// Where the Wagtail site is, and the operations the browser may ask for through /graphql (this
// app's own route, so the browser's requests are same-origin and carry the visitor's cookies).
export const TAILORED_URL = process.env.TAILORED_URL ?? "http://127.0.0.1:8000";
export const BROWSER_OPERATIONS = new Set(["homepage", "homepage_products", "set_consent", "track_events", "erase_my_data", "visitor"]);

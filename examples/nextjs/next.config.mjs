// The Wagtail site with Tailored is read at run time from TAILORED_URL (app/tailored.ts), not
// inlined at build time, so one build serves any site.
/** @type {import('next').NextConfig} */
const config = {};
export default config;

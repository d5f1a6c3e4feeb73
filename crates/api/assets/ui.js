// Tasker dashboard: small enhancements over server-rendered pages. Every
// page and action works without this script.
"use strict";

// Ask before an action marked data-confirm.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// Sections marked data-refresh="<seconds>" are replaced in place with the
// same section of a fresh copy of the page.
function refreshSection(element) {
  const seconds = Number(element.getAttribute("data-refresh")) || 5;
  setTimeout(async () => {
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin" });
      if (response.ok && !response.redirected) {
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        const fresh = page.getElementById(element.id);
        if (fresh) {
          element.innerHTML = fresh.innerHTML;
        }
      }
    } catch (_) {
      // Offline or restarting: try again at the next tick.
    }
    refreshSection(element);
  }, seconds * 1000);
}
document.querySelectorAll("[data-refresh][id]").forEach(refreshSection);

// A running task's page follows it over server-sent events.
const live = document.querySelector("[data-events]");
if (live && window.EventSource) {
  const source = new EventSource(live.getAttribute("data-events"));
  source.addEventListener("live", (event) => {
    live.innerHTML = event.data;
  });
  source.addEventListener("done", () => source.close());
}

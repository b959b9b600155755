/* The integrations list: badges, last check and metrics follow the live events; filters apply on change. */
(function () {
  "use strict";

  const PROBLEM = ["degraded", "error", "reconnect_required"];

  function bucket(status) {
    if (status === "connected") return "connected";
    if (PROBLEM.indexOf(status) >= 0) return "problem";
    if (status === "disconnected") return "disconnected";
    return null;
  }

  function bump(status, delta) {
    const name = bucket(status);
    const el = name && document.querySelector('[data-count="' + name + '"]');
    if (el) el.textContent = String(Math.max(0, Number(el.textContent) + delta));
  }

  function rowFor(id) {
    return document.querySelector('tr[data-integration="' + CSS.escape(id) + '"]');
  }

  function onEvent(event) {
    if (event.event === "created") {
      document.getElementById("list-changed").hidden = false;
      return;
    }
    const row = rowFor(event.integration);
    if (!row) return;
    if (event.event === "deleted") {
      bump(row.dataset.status, -1);
      const all = document.querySelector('[data-count="all"]');
      if (all) all.textContent = String(Math.max(0, Number(all.textContent) - 1));
      row.remove();
      return;
    }
    if (event.status && event.status !== row.dataset.status) {
      bump(row.dataset.status, -1);
      bump(event.status, +1);
      row.dataset.status = event.status;
      Hub.setBadge(row.querySelector('[data-role="status"]'), event.status);
      const message = row.querySelector('[data-role="message"]');
      if (message) message.textContent = event.status === "connected" ? "" : event.message || "";
    }
    if (event.event === "test" || event.event === "health_check") {
      Hub.setTime(row.querySelector('[data-role="last-check"]'), event.at);
    }
    if (event.metrics && event.metrics.total) {
      row.querySelector('[data-role="success-rate"]').textContent = Hub.percent(event.metrics.success_rate);
      row.querySelector('[data-role="latency"]').textContent = Hub.ms(event.metrics.avg_latency_ms);
    }
  }

  /* After a gap in the live feed, fetch the current statuses once instead of trusting stale badges. */
  async function resync() {
    const answer = await Hub.api("GET", "/api/integrations?page_size=1000");
    if (!answer.ok || !answer.data) return;
    (answer.data.results || answer.data).forEach(function (item) {
      onEvent({ event: "status_change", integration: item.id, status: item.status, message: item.last_error });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.addEventListener("hub:event", function (e) { onEvent(e.detail); });
    document.addEventListener("hub:resync", resync);
    const filters = document.getElementById("filters");
    if (filters) {
      filters.querySelectorAll("select").forEach(function (select) {
        select.addEventListener("change", function () { filters.requestSubmit(); });
      });
    }
  });
})();

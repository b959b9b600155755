/* Details of one integration: controls answer in place, the badge, events, metrics and chart follow
 * the live events. Without JavaScript the same controls post plain forms. */
(function () {
  "use strict";

  const MAX_POINTS = 60;
  const EVENT_LABELS = {
    status_change: "Status change",
    test: "Connection test",
    health_check: "Health check",
    created: "Configuration change",
    updated: "Configuration change",
    deleted: "Configuration change",
  };
  const VERBS = { test: "Testing the connection…", connect: "Connecting…", disconnect: "Disconnecting…" };

  let root;
  let api;
  let points = [];

  const el = Hub.el;
  const svg = Hub.svg;

  // ---- result of a control --------------------------------------------------------------------
  function showResult(kind, text) {
    const box = document.getElementById("action-result");
    box.replaceChildren(el("span", { class: "result result-" + kind, "data-result": kind }, text));
  }

  function errorText(data) {
    if (!data) return "The hub answered with an error.";
    if (data.detail) return String(data.detail);
    return Object.keys(data).map(function (key) { return key + ": " + [].concat(data[key]).join(" "); }).join("; ");
  }

  async function runAction(form) {
    const action = form.dataset.action;
    const button = form.querySelector("button");
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    showResult("pending", VERBS[action] || "Working…");
    try {
      const answer = await Hub.runOperation(api + "/" + action);
      if (!answer.ok) {
        showResult("fail", errorText(answer.data));
      } else if (Hub.finished(answer.data)) {
        const [kind, text] = Hub.describeResult(action, answer.data.result);
        showResult(kind, text);
      } else {
        showResult("pending", "Still running in the worker; the result will show up in the events below.");
      }
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
      syncButtons(root.dataset.status);
    }
  }

  // Connect is off while connected or connecting, Disconnect while disconnected.
  function syncButtons(status) {
    document.querySelectorAll("[data-disabled-when]").forEach(function (button) {
      button.disabled = button.dataset.disabledWhen.split(" ").indexOf(status) >= 0;
    });
  }

  // ---- live updates --------------------------------------------------------------------------
  function applyStatus(status, message) {
    if (!status) return;
    root.dataset.status = status;
    Hub.setBadge(root.querySelector('[data-role="status"]'), status);
    const line = root.querySelector('[data-role="message"]');
    line.textContent = message || "";
    line.hidden = status === "connected" || !message;
    document.querySelector('[data-role="reconnect"]').hidden = status !== "reconnect_required";
    syncButtons(status);
  }

  function addEventRow(event) {
    const label = EVENT_LABELS[event.event];
    if (!label) return;
    const body = document.querySelector("#events-table tbody");
    const empty = body.querySelector(".empty-row");
    if (empty) empty.remove();
    const row = el("tr", { class: "new-row" });
    const when = el("td");
    when.appendChild(el("time", { datetime: event.at }, event.at));
    row.appendChild(when);
    row.appendChild(el("td", {}, label));
    const result = el("td");
    if (event.ok === true) result.appendChild(el("span", { class: "tag tag-ok" }, "ok"));
    else if (event.ok === false) result.appendChild(el("span", { class: "tag tag-fail" }, "failed"));
    else result.textContent = "—";
    row.appendChild(result);
    row.appendChild(el("td", { class: "num" }, event.latency_ms === null || event.latency_ms === undefined ? "—" : Hub.ms(event.latency_ms)));
    row.appendChild(el("td", {}, event.message || ""));
    row.appendChild(el("td", {}, event.actor || "hub"));  // "hub": a scheduled check or the hub itself
    body.insertBefore(row, body.firstChild);
    Hub.refreshTimes(row);
  }

  function applyMetrics(metrics) {
    if (!metrics) return;
    const set = function (name, text) {
      const node = document.querySelector('[data-metric="' + name + '"]');
      if (node) node.textContent = text;
    };
    set("total", String(metrics.total || 0));
    if (metrics.total) {
      set("success_rate", Hub.percent(metrics.success_rate));
      set("avg_latency_ms", Hub.ms(metrics.avg_latency_ms));
      set("p95_latency_ms", Hub.ms(metrics.p95_latency_ms));
    }
  }

  function onEvent(event) {
    if (event.integration !== root.dataset.integration) return;
    if (event.event === "deleted") {
      showResult("fail", "This integration was deleted.");
      document.querySelectorAll(".controls button").forEach(function (b) { b.disabled = true; });
      return;
    }
    if (event.status && event.status !== root.dataset.status) applyStatus(event.status, event.message);
    if (event.event === "test" || event.event === "health_check") {
      Hub.setTime(document.querySelector('[data-role="last-check"]'), event.at);
    }
    if (event.event !== "metrics") addEventRow(event);
    applyMetrics(event.metrics);
    if (event.latency_ms !== null && event.latency_ms !== undefined) {
      points.push({ at: new Date(event.at), latency: Number(event.latency_ms), ok: event.ok !== false });
      drawChart();
    }
  }

  // ---- chart ---------------------------------------------------------------------------------
  /* Drawn at the box's own pixel width so text is never stretched; redrawn on resize. */
  function drawChart() {
    const box = document.getElementById("chart");
    points = points.slice(-MAX_POINTS);
    if (!points.length) {
      box.replaceChildren(el("p", { class: "muted" }, "No checks yet. Test the connection to see its latency here."));
      return;
    }
    const width = Math.max(240, box.clientWidth), height = 170, left = 52, right = 10, top = 12, bottom = 22;
    const peak = Math.max.apply(null, points.map(function (p) { return p.latency; }));
    const max = peak * 1.15 || 1;
    const x = function (i) { return points.length === 1 ? (left + width - right) / 2 : left + (i * (width - left - right)) / (points.length - 1); };
    const y = function (v) { return top + (height - top - bottom) * (1 - v / max); };
    const chart = svg("svg", { viewBox: "0 0 " + width + " " + height, "aria-hidden": "true" });
    [peak, peak / 2].forEach(function (v) {
      chart.appendChild(svg("line", { class: "grid-line", x1: left, x2: width - right, y1: y(v), y2: y(v) }));
      chart.appendChild(svg("text", { x: left - 8, y: y(v) + 4, "text-anchor": "end" }, Math.round(v) + " ms"));
    });
    chart.appendChild(svg("line", { class: "axis", x1: left, x2: width - right, y1: y(0), y2: y(0) }));
    chart.appendChild(svg("text", { x: left - 8, y: y(0) + 4, "text-anchor": "end" }, "0"));
    const coords = points.map(function (p, i) { return x(i).toFixed(1) + "," + y(p.latency).toFixed(1); });
    if (points.length > 1) {
      chart.appendChild(svg("polygon", { class: "area", points: x(0) + "," + y(0) + " " + coords.join(" ") + " " + x(points.length - 1) + "," + y(0) }));
      chart.appendChild(svg("polyline", { class: "line", points: coords.join(" ") }));
    }
    points.forEach(function (p, i) {
      const dot = svg("circle", { class: p.ok ? "pt-ok" : "pt-fail", cx: x(i), cy: y(p.latency), r: p.ok ? 3 : 4.5 });
      dot.appendChild(svg("title", {}, p.at.toLocaleTimeString() + " · " + Math.round(p.latency) + " ms" + (p.ok ? "" : " · failed")));
      chart.appendChild(dot);
    });
    const time = function (d) { return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }); };
    chart.appendChild(svg("text", { x: left, y: height - 4 }, time(points[0].at)));
    chart.appendChild(svg("text", { x: width - right, y: height - 4, "text-anchor": "end" }, time(points[points.length - 1].at)));
    box.replaceChildren(chart);
  }

  async function loadChart() {
    const answer = await Hub.api("GET", api + "/events?page_size=200");
    if (!answer.ok || !answer.data) {
      document.getElementById("chart").replaceChildren(el("p", { class: "muted" }, "Could not load the event history."));
      return;
    }
    points = (answer.data.results || answer.data)
      .filter(function (e) { return e.latency_ms !== null && e.latency_ms !== undefined; })
      .reverse()
      .map(function (e) { return { at: new Date(e.created_at), latency: Number(e.latency_ms), ok: e.ok !== false }; });
    drawChart();
  }

  async function resync() {
    const answer = await Hub.api("GET", api);
    if (answer.ok && answer.data && answer.data.status !== root.dataset.status) {
      applyStatus(answer.data.status, answer.data.last_error);
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    root = document.getElementById("integration");
    api = root.dataset.api;
    document.querySelectorAll("form[data-action]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        runAction(form);
      });
    });
    const dialog = document.getElementById("delete-dialog");
    const deleteLink = document.querySelector('[data-role="delete"]');
    if (dialog && deleteLink && typeof dialog.showModal === "function") {
      deleteLink.addEventListener("click", function (e) {
        e.preventDefault();
        dialog.showModal();
        dialog.querySelector('[data-role="cancel"]').focus();
      });
      dialog.querySelector('[data-role="cancel"]').addEventListener("click", function () { dialog.close(); });
    }
    document.addEventListener("hub:event", function (e) { onEvent(e.detail); });
    document.addEventListener("hub:resync", resync);
    let resizing = null;
    window.addEventListener("resize", function () {
      window.clearTimeout(resizing);
      resizing = window.setTimeout(drawChart, 150);
    });
    loadChart();
  });
})();

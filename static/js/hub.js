/* Shared by every dashboard page (loaded first, before the page's own script): element building, the
 * JSON API helper with the CSRF token, following a background operation, status labels, the live
 * WebSocket and small formatters.
 *
 * Pages listen for `hub:event` (one live event from /ws/integrations/, see integrations/services.py)
 * and `hub:resync` (the socket opened or came back: events before that may have been missed).
 */
(function () {
  "use strict";

  const SVG = "http://www.w3.org/2000/svg";
  // How long to follow an operation the worker has not finished: rounds of long-polls of WAIT seconds.
  const FOLLOW_ROUNDS = 6;
  const FOLLOW_WAIT = 10;

  /* Attributes: undefined, null and false leave the attribute out; true sets it empty (hidden, checked). */
  function build(node, attrs, text) {
    Object.keys(attrs || {}).forEach(function (name) {
      const value = attrs[name];
      if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value === true ? "" : value);
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function el(tag, attrs, text) {
    return build(document.createElement(tag), attrs, text);
  }

  function svg(tag, attrs, text) {
    return build(document.createElementNS(SVG, tag), attrs, text);
  }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  /* fetch() with the session's CSRF token; resolves to {ok, status, data} and never throws on 4xx/5xx. */
  async function api(method, url, body) {
    const options = {
      method: method,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, options);
    } catch (err) {
      return { ok: false, status: 0, data: { detail: "The hub did not answer; check your connection." } };
    }
    let data = null;
    const text = await response.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (err) {
        data = { detail: "Unexpected answer from the hub (HTTP " + response.status + ")." };
      }
    }
    return { ok: response.ok, status: response.status, data: data };
  }

  function finished(data) {
    return Boolean(data) && (data.state === "succeeded" || data.state === "failed");
  }

  /* POST an operation (test, connect, disconnect) and follow it until the worker reports: the POST
   * waits FOLLOW_WAIT s, then up to FOLLOW_ROUNDS long-polls of GET /api/operations/{id}. Resolves to
   * the last answer: finished (data.state succeeded/failed, data.result), an error, or still 202. */
  async function runOperation(url) {
    let answer = await api("POST", url + "?wait=" + FOLLOW_WAIT);
    for (let round = 0; answer.ok && answer.status === 202 && !finished(answer.data) && round < FOLLOW_ROUNDS; round += 1) {
      answer = await api("GET", "/api/operations/" + encodeURIComponent(answer.data.id) + "?wait=" + FOLLOW_WAIT);
    }
    return answer;
  }

  /* One line for an operation's result: ["ok" | "fail", text], e.g. "Connection OK · 12 ms". */
  function describeResult(action, result) {
    result = result || {};
    const latency = result.latency_ms !== undefined && result.latency_ms !== null ? " · " + ms(result.latency_ms) : "";
    if (result.ok) {
      if (action === "test") return ["ok", "Connection OK" + latency];
      if (action === "connect") return ["ok", "Connected" + latency];
      return ["ok", "Disconnected"];
    }
    const category = result.category ? result.category + ": " : "";
    const what = action === "test" ? "Test failed" : action === "connect" ? "Could not connect" : "Could not disconnect";
    return ["fail", what + " — " + category + (result.message || "no details") + latency];
  }

  /* The model's status labels, rendered by the server with json_script (id "status-labels"). */
  let statusLabels = null;

  function statusLabel(status) {
    if (statusLabels === null) {
      const source = document.getElementById("status-labels");
      try {
        statusLabels = (source && JSON.parse(source.textContent)) || {};
      } catch (err) {
        statusLabels = {};
      }
    }
    return statusLabels[status] || String(status || "unknown").replace(/_/g, " ");
  }

  function setBadge(badge, status) {
    if (!badge || !status || badge.dataset.status === status) return false;
    badge.className = "badge badge-" + status + " flash";
    badge.dataset.status = status;
    badge.textContent = statusLabel(status);
    return true;
  }

  function percent(rate) {
    if (rate === null || rate === undefined) return "—";
    let value = Number(rate);
    if (value <= 1) value *= 100;
    return value === 0 || value === 100 ? value.toFixed(0) + "%" : value.toFixed(1) + "%";
  }

  function ms(value) {
    return value === null || value === undefined ? "—" : Math.round(Number(value)) + " ms";
  }

  function relativeTime(date) {
    const seconds = Math.round((Date.now() - date.getTime()) / 1000);
    if (seconds < 5) return "just now";
    if (seconds < 60) return seconds + " s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h ago";
    return date.toLocaleString();
  }

  /* <time datetime> elements read "12 s ago"; the absolute time stays in the tooltip. */
  function refreshTimes(root) {
    (root || document).querySelectorAll("time[datetime]").forEach(function (el) {
      const date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      el.title = date.toLocaleString();
      el.textContent = relativeTime(date);
    });
  }

  function setTime(el, iso) {
    if (!el || !iso) return;
    el.setAttribute("datetime", iso);
    refreshTimes(el.parentNode);
  }

  /* The live socket: reconnects with exponential backoff (1 s doubling to 30 s, with jitter). */
  const live = {
    socket: null,
    attempts: 0,
    closing: false,
    indicator: null,

    show(state, text) {
      if (!this.indicator) return;
      this.indicator.hidden = false;
      this.indicator.classList.toggle("is-live", state === "live");
      this.indicator.classList.toggle("is-retrying", state === "retrying");
      this.indicator.querySelector(".live-text").textContent = text;
    },

    connect() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      const socket = new WebSocket(scheme + location.host + "/ws/integrations/");
      this.socket = socket;
      socket.addEventListener("open", () => {
        this.attempts = 0;
        this.show("live", "Live");
        // Whatever happened between rendering the page (or losing the socket) and now was not pushed.
        document.dispatchEvent(new CustomEvent("hub:resync"));
      });
      socket.addEventListener("message", (message) => {
        let event;
        try {
          event = JSON.parse(message.data);
        } catch (err) {
          return; // not ours
        }
        if (event && event.integration) document.dispatchEvent(new CustomEvent("hub:event", { detail: event }));
      });
      socket.addEventListener("close", () => {
        this.socket = null;
        if (this.closing) return;
        const delay = Math.min(30000, 1000 * Math.pow(2, this.attempts)) * (0.75 + Math.random() * 0.5);
        this.attempts += 1;
        this.show("retrying", "Reconnecting…");
        window.setTimeout(() => this.connect(), delay);
      });
    },

    start() {
      this.indicator = document.getElementById("live-indicator");
      if (!("WebSocket" in window) || !this.indicator) return;
      // Leaving the page closes the socket on purpose: no reconnect attempt, no error noise.
      window.addEventListener("pagehide", () => {
        this.closing = true;
        if (this.socket) this.socket.close();
      });
      window.addEventListener("pageshow", (event) => {
        if (!event.persisted) return; // restored from the back-forward cache: open a fresh socket
        this.closing = false;
        this.connect();
      });
      this.connect();
    },
  };

  window.Hub = {
    el: el,
    svg: svg,
    api: api,
    runOperation: runOperation,
    finished: finished,
    describeResult: describeResult,
    statusLabel: statusLabel,
    setBadge: setBadge,
    percent: percent,
    ms: ms,
    refreshTimes: refreshTimes,
    setTime: setTime,
    live: live,
  };

  document.addEventListener("DOMContentLoaded", function () {
    refreshTimes();
    window.setInterval(refreshTimes, 15000);
    live.start();
  });
})();

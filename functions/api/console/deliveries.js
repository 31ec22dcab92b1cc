// A video's webhook deliveries, each with every attempt, and "redeliver" for the finished ones.

import { api } from "./api.js";
import { announce, errorBox, h, statusBadge, table, time } from "./dom.js";

const POLL_MS = 1500;
const UNSETTLED = new Set(["pending", "delivering"]);

// `videoStatus()`: the video's status as last seen; a video still running has more events to come.
export function renderDeliveries(section, videoId, videoStatus) {
  let timer = 0;
  let stopped = false;
  // Redeliveries asked for here, until their new attempt is seen: delivery id -> attempts before.
  const awaited = new Map();
  const body = h("div", { id: "deliveries" });
  const reload = h("button", { type: "button", class: "quiet" }, "Refresh deliveries");
  section.append(h("h2", { id: "deliveries-title" }, "Webhook deliveries"), reload, body);

  async function load() {
    clearTimeout(timer);
    try {
      const list = await api("GET", `/videos/${encodeURIComponent(videoId)}/deliveries`);
      if (stopped) return;
      for (const delivery of list.data) {
        if (awaited.has(delivery.id) && delivery.attempts.length > awaited.get(delivery.id)) {
          awaited.delete(delivery.id);
          announce(`Delivery ${delivery.id} attempted again: ${delivery.status}.`);
        }
      }
      show(list.data);
      const unsettled = list.data.some((d) => UNSETTLED.has(d.status)) || awaited.size > 0;
      if (unsettled || !["completed", "failed"].includes(videoStatus())) timer = setTimeout(load, POLL_MS);
    } catch (error) {
      if (!stopped) body.replaceChildren(errorBox(error));
    }
  }

  function show(deliveries) {
    if (!deliveries.length) {
      body.replaceChildren(
        h("p", { class: "help" }, "No deliveries: the video has no webhook_url and no endpoint takes its events."),
      );
      return;
    }
    body.replaceChildren(...deliveries.map(card));
  }

  function card(delivery) {
    const finished = !UNSETTLED.has(delivery.status);
    const redeliver = h(
      "button",
      { type: "button", class: "redeliver", disabled: !finished || awaited.has(delivery.id) },
      "Redeliver",
    );
    redeliver.addEventListener("click", () => send(delivery, redeliver));
    const attempts = delivery.attempts.map((a) =>
      h(
        "tr",
        { class: "attempt" },
        h("td", { class: "num" }, String(a.attempt)),
        h("td", null, time(a.at)),
        h("td", { class: "num" }, a.status === null ? "no answer" : String(a.status)),
        h("td", { class: "num" }, `${a.latency_ms} ms`),
        h("td", null, a.error || "—"),
        h("td", null, a.manual ? "redelivery" : "automatic"),
      ),
    );
    return h(
      "article",
      { class: "card delivery", "data-id": delivery.id, "data-status": delivery.status },
      h(
        "header",
        { class: "delivery-head" },
        h("h3", null, delivery.event_type),
        statusBadge(delivery.status),
        redeliver,
      ),
      h(
        "p",
        { class: "help" },
        h("span", { class: "mono" }, delivery.id),
        ` · to ${delivery.target === "job" ? "the job's webhook_url" : delivery.target}`,
        delivery.url ? ` (${delivery.url})` : "",
        ` · ${delivery.attempt_count} attempt${delivery.attempt_count === 1 ? "" : "s"}`,
        delivery.next_attempt_at ? h("span", null, " · next at ", time(delivery.next_attempt_at)) : "",
      ),
      attempts.length
        ? table(`Attempts of ${delivery.id}`, ["#", "Time", "Status", "Latency", "Error", "Kind"], attempts)
        : h("p", { class: "help" }, "Not attempted yet."),
    );
  }

  async function send(delivery, button) {
    button.disabled = true;
    try {
      await api(
        "POST",
        `/videos/${encodeURIComponent(videoId)}/deliveries/${encodeURIComponent(delivery.id)}/redeliver`,
      );
      awaited.set(delivery.id, delivery.attempts.length);
      announce(`Delivery ${delivery.id} is due again.`);
      load();
    } catch (error) {
      button.disabled = false;
      button.after(errorBox(error));
    }
  }

  reload.addEventListener("click", load);
  load();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

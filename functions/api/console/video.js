// One video: its player, every field of the Video object, cancel/delete, and its webhook deliveries.

import { api, IN_FLIGHT } from "./api.js";
import { renderDeliveries } from "./deliveries.js";
import { announce, clear, errorBox, h, heading, statusBadge, time, usd } from "./dom.js";

const POLL_MS = 1500;
const TIMES = /(_at|^since)$/;

export function renderVideo(main, id) {
  let timer = 0;
  let stopped = false;
  let shownStatus = null;
  const summary = h("div", { class: "summary" });
  const player = h("div", { class: "player" });
  const actions = h("div", { class: "toolbar" });
  const fields = h("section", { "aria-labelledby": "fields-title" });
  const deliveries = h("section", { "aria-labelledby": "deliveries-title" });
  const problem = h("div");
  clear(main).append(
    h("p", null, h("a", { href: "#/videos" }, "← Videos")),
    heading(id),
    problem,
    summary,
    player,
    actions,
    fields,
    deliveries,
  );
  const stopDeliveries = renderDeliveries(deliveries, id, () => shownStatus);

  async function load() {
    clearTimeout(timer);
    try {
      const video = await api("GET", `/videos/${encodeURIComponent(id)}`);
      if (stopped) return;
      show(video);
      if (IN_FLIGHT.has(video.status)) timer = setTimeout(load, POLL_MS);
    } catch (error) {
      if (!stopped) problem.replaceChildren(errorBox(error));
    }
  }

  function show(video) {
    const parts = [
      statusBadge(video.status),
      h("progress", { max: "100", value: String(video.progress), "aria-label": "Progress" }),
      h("span", { class: "num", id: "progress-text" }, `${video.progress}%`),
      h("span", null, `${video.model} · ${video.size} · ${video.seconds} s · ${usd(video.cost.estimated_usd)}`),
    ];
    if (video.retry) parts.push(retrying(video.retry));
    if (video.error) parts.push(h("p", { class: "error", id: "video-error" }, `${video.error.code}: ${video.error.message}`));
    summary.replaceChildren(...parts);
    fields.replaceChildren(h("h2", { id: "fields-title" }, "Video object"), describe(video, "video-fields"));
    if (video.status !== shownStatus) {
      shownStatus = video.status;
      actions.replaceChildren(actionButton(video));
      if (video.status === "completed") showPlayer(video);
      else player.replaceChildren();
    }
  }

  async function showPlayer(video) {
    try {
      // The content route answers with a redirect whose Location fetch cannot read; this one answers the URL.
      const link = await api("GET", `/videos/${encodeURIComponent(video.id)}/content_url`);
      if (stopped) return;
      const element = h("video", {
        id: "player",
        controls: true,
        preload: "auto",
        src: link.url,
        "aria-label": `Video ${video.id}`,
      });
      if (video.variants && (video.variants.available || []).includes("thumbnail")) {
        api("GET", `/videos/${encodeURIComponent(video.id)}/content_url`, { query: { variant: "thumbnail" } })
          .then((poster) => element.setAttribute("poster", poster.url))
          .catch(() => {});
      }
      if (video.output) {
        element.width = Math.min(video.output.width, 960);
      }
      player.replaceChildren(
        element,
        h(
          "p",
          { class: "help" },
          h("a", { href: link.url, download: `${video.id}.mp4` }, "Download the MP4"),
          " — the link works until ",
          time(link.expires_at),
          ".",
        ),
      );
    } catch (error) {
      player.replaceChildren(errorBox(error));
    }
  }

  function actionButton(video) {
    const running = IN_FLIGHT.has(video.status);
    const label = running ? "Cancel video" : "Delete video";
    const button = h("button", { type: "button", class: "danger", id: "delete-video" }, label);
    button.addEventListener("click", async () => {
      const question = running
        ? `Cancel ${video.id}? The upstream job is stopped and the video is removed.`
        : `Delete ${video.id}? The stored MP4 is deleted; this cannot be undone.`;
      if (!window.confirm(question)) return;
      button.disabled = true;
      try {
        await api("DELETE", `/videos/${encodeURIComponent(video.id)}`);
        announce(running ? `${video.id} canceled.` : `${video.id} deleted.`);
        location.hash = "#/videos";
      } catch (error) {
        button.disabled = false;
        actions.append(errorBox(error));
      }
    });
    return button;
  }

  load();
  return () => {
    stopped = true;
    clearTimeout(timer);
    stopDeliveries();
  };
}

// A failing upstream being retried: which stage, how often so far, what it last answered, when the next try is.
function retrying(retry) {
  return h(
    "p",
    { class: "warn", id: "video-retry" },
    `Retrying the ${retry.stage}: ${retry.attempts} failed attempt${retry.attempts === 1 ? "" : "s"} since `,
    time(retry.since),
    `; last: ${retry.last_error.code} (${retry.last_error.message})`,
    retry.next_attempt_at ? h("span", null, "; next at ", time(retry.next_attempt_at)) : "",
    ".",
  );
}

// Every field the API answered, nested objects included, so a field added to the Video object shows up too.
export function describe(value, id) {
  const list = h("dl", { class: "fields", id });
  for (const [name, item] of Object.entries(value)) {
    list.append(h("dt", null, name), h("dd", { "data-field": name }, render(name, item)));
  }
  return list;
}

function render(name, value) {
  if (value === null || value === undefined) return h("span", { class: "none" }, "null");
  if (Array.isArray(value)) {
    if (!value.length) return h("span", { class: "none" }, "[]");
    return h(
      "ol",
      { class: "plain" },
      value.map((item) => h("li", null, render(name, item))),
    );
  }
  if (typeof value === "object") {
    if (!Object.keys(value).length) return h("span", { class: "none" }, "{}");
    return describe(value);
  }
  if (typeof value === "number" && TIMES.test(name)) return h("span", null, time(value), ` (${value})`);
  return h("span", { class: typeof value === "string" && value.length > 40 ? "mono wrap" : "mono" }, String(value));
}

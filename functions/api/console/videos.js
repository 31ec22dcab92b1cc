// The tenant's videos, newest first, a page at a time with the API's cursor; rows in flight refresh themselves.

import { api, IN_FLIGHT } from "./api.js";
import { clear, errorBox, h, heading, statusBadge, time, usd } from "./dom.js";

const PAGE = 20;
// The list route has no status filter: a filtered page is gathered from up to this many API pages per click.
const SCAN_PAGES = 5;
const POLL_MS = 2000;
const STATUSES = ["queued", "in_progress", "completed", "failed"];
const COLUMNS = ["Video", "Status", "Progress", "Model", "Size", "Length", "Cost", "Created"];

export function renderVideos(main) {
  let cursor = null;
  let hasMore = false;
  let timer = 0;
  let stopped = false;
  const rows = new Map();

  const filter = h(
    "select",
    { id: "status-filter", name: "status" },
    h("option", { value: "" }, "Every status"),
    STATUSES.map((status) => h("option", { value: status }, status.replace("_", " "))),
  );
  const refresh = h("button", { type: "button", class: "quiet" }, "Refresh");
  const more = h("button", { type: "button", id: "more" }, "Load more");
  const tbody = h("tbody");
  const problem = h("div");
  const empty = h("p", { class: "help" }, "No videos yet. ");
  empty.append(h("a", { href: "#/new" }, "Create one"), ".");
  empty.hidden = true; // until a load says the list is empty
  more.hidden = true;

  const list = h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Videos" },
    h(
      "table",
      { id: "videos", class: "stack" },
      h("caption", { class: "visually-hidden" }, "Videos, newest first"),
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          COLUMNS.map((name) => h("th", { scope: "col" }, name)),
        ),
      ),
      tbody,
    ),
  );

  clear(main).append(
    heading("Videos"),
    h(
      "div",
      { class: "toolbar" },
      h("label", { for: "status-filter" }, "Status"),
      filter,
      refresh,
      h("a", { href: "#/new", class: "button" }, "New video"),
    ),
    problem,
    list,
    empty,
    more,
  );

  // A thumbnail's presigned URL per video, asked once per visit of the list.
  const thumbnails = new Map();

  // Shown where the Video object names a thumbnail variant (once its previews are made).
  function thumbnail(video) {
    const preview = video.variants && video.variants.thumbnail;
    if (!preview || !(video.variants.available || []).includes("thumbnail")) return null;
    const img = h("img", {
      class: "thumb",
      alt: "",
      width: "96",
      height: String(Math.round((96 * preview.height) / preview.width)),
      decoding: "async",
    });
    if (!thumbnails.has(video.id)) {
      const asked = api("GET", `/videos/${encodeURIComponent(video.id)}/content_url`, { query: { variant: "thumbnail" } });
      thumbnails.set(
        video.id,
        asked.then(
          (link) => link.url,
          () => null,
        ),
      );
    }
    thumbnails.get(video.id).then((address) => {
      if (address) img.src = address;
      else img.remove();
    });
    return img;
  }

  function row(video) {
    const progress = h("progress", { max: "100", value: String(video.progress), "aria-label": `${video.id} progress` });
    const tr = h(
      "tr",
      { "data-id": video.id, "data-status": video.status, "data-previews": video.variants?.status || "" },
      h(
        "td",
        { class: "video-cell" },
        thumbnail(video),
        h("a", { href: `#/videos/${encodeURIComponent(video.id)}`, class: "mono" }, video.id),
      ),
      h("td", null, statusBadge(video.status)),
      h("td", { class: "progress-cell" }, progress, h("span", { class: "num" }, `${video.progress}%`)),
      h("td", null, video.model),
      h("td", null, video.size),
      h("td", { class: "num" }, `${video.seconds} s`),
      h("td", { class: "num" }, usd(video.cost.estimated_usd)),
      h("td", null, time(video.created_at)),
    );
    tr.querySelectorAll("td").forEach((td, i) => td.setAttribute("data-label", COLUMNS[i]));
    return tr;
  }

  function show(video) {
    const old = rows.get(video.id);
    const fresh = row(video);
    if (old) old.replaceWith(fresh);
    else tbody.append(fresh);
    rows.set(video.id, fresh);
  }

  async function load(reset) {
    clearTimeout(timer);
    if (reset) {
      cursor = null;
      rows.clear();
      tbody.replaceChildren();
    }
    more.disabled = true;
    problem.replaceChildren();
    const wanted = filter.value;
    try {
      let found = 0;
      for (let scanned = 0; scanned < (wanted ? SCAN_PAGES : 1); scanned += 1) {
        const page = await api("GET", "/videos", {
          query: { after: cursor, limit: wanted ? 100 : PAGE, order: "desc" },
        });
        for (const video of page.data) {
          if (!wanted || video.status === wanted) {
            show(video);
            found += 1;
          }
        }
        cursor = page.last_id || cursor;
        hasMore = page.has_more;
        if (!hasMore || found >= PAGE) break;
      }
    } catch (error) {
      problem.replaceChildren(errorBox(error));
    }
    if (stopped) return;
    more.hidden = !hasMore;
    more.disabled = false;
    empty.hidden = rows.size > 0 || hasMore;
    empty.firstChild.textContent = wanted ? `No ${wanted.replace("_", " ")} videos found. ` : "No videos yet. ";
    schedule();
  }

  // Only the rows still changing are asked again (one GET each), so paging and the cursor are left alone.
  function schedule() {
    clearTimeout(timer);
    // A completed video whose previews are still being made is asked again too, for its thumbnail.
    const flying = [...rows.values()]
      .filter((tr) => IN_FLIGHT.has(tr.dataset.status) || tr.dataset.previews === "pending")
      .map((tr) => tr.dataset.id);
    if (!flying.length || stopped) return;
    timer = setTimeout(async () => {
      await Promise.all(
        flying.map(async (id) => {
          try {
            const video = await api("GET", `/videos/${encodeURIComponent(id)}`);
            if (!stopped && rows.has(id)) show(video);
          } catch (error) {
            if (error.status === 404 && rows.has(id)) {
              rows.get(id).remove();
              rows.delete(id);
            }
          }
        }),
      );
      schedule();
    }, POLL_MS);
  }

  filter.addEventListener("change", () => load(true));
  refresh.addEventListener("click", () => load(true));
  more.addEventListener("click", () => load(false));
  load(true);

  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

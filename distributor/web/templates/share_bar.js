/* Distributor share bar: <div data-distributor-share></div> plus this script (data-lang="en" for
   English, data-url to name the article instead of the page's canonical URL). No cookies, no other
   host: counts come from this script's own server. */
(function () {
  "use strict";
  var C = {{ config|tojson }};
  var me = document.currentScript;
  var base = me ? me.src.replace(/\/embed\/share-bar\.js(\?.*)?$/, "") : "";
  var CSS = ".dsb{display:flex;flex-wrap:wrap;align-items:center;gap:6px;padding:4px 0;font:14px/1.4 Arial,Helvetica,sans-serif}" +
    ".dsb-label{font-weight:bold;margin-right:4px}.dsb-total{color:#555;font-weight:normal}" +
    ".dsb a,.dsb button{display:inline-flex;align-items:center;gap:4px;padding:4px 10px;border:0;border-radius:3px;" +
    "color:#fff;text-decoration:none;background:#555;font:inherit;cursor:pointer}" +
    ".dsb-n{background:rgba(255,255,255,.25);border-radius:8px;padding:0 6px;font-size:12px}" +
    ".dsb-facebook{background:#1877f2!important}.dsb-x{background:#111!important}.dsb-telegram{background:#229ed9!important}" +
    ".dsb-zalo{background:#0068ff!important}.dsb-linkedin{background:#0a66c2!important}.dsb-bluesky{background:#1185fe!important}";

  function canonical() {
    var link = document.querySelector('link[rel="canonical"]');
    var url = link && link.href ? link.href : location.href;
    return url.split("#")[0];
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text) node.textContent = text;
    return node;
  }

  function count(node, n) {
    if (n) { node.appendChild(document.createTextNode(" ")); node.appendChild(el("span", "dsb-n", String(n))); }
  }

  function direct(template, url) {
    return template.replace("{url}", encodeURIComponent(url)).replace("{title}", encodeURIComponent(document.title));
  }

  function render(root, data, url, lang) {
    var words = C.words[lang];
    var bar = el("div", "dsb");
    var label = el("span", "dsb-label", words.share + ":");
    if (data && data.total) { label.appendChild(document.createTextNode(" ")); label.appendChild(el("span", "dsb-total", String(data.total))); }
    bar.appendChild(label);
    C.networks.forEach(function (n) {
      var name = lang === "en" ? n.label_en : n.label_vi;
      var known = data && data.article_id;
      var counted = known ? (data.networks[n.network] || 0) : 0;
      if (n.network === "copy") {
        if (!navigator.clipboard) return;
        var button = el("button", "dsb-copy", name);
        button.type = "button";
        count(button, counted);
        button.addEventListener("click", function () {
          navigator.clipboard.writeText(known ? data.url : url).then(function () { button.firstChild.textContent = words.copied; });
          if (known) fetch(base + "/s/" + data.article_id + "/copy", { credentials: "omit", keepalive: true });
        });
        bar.appendChild(button);
        return;
      }
      var link = el("a", "dsb-" + n.network, name);
      link.href = known ? base + "/s/" + data.article_id + "/" + n.network : direct(n.template, url);
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.title = n.network === "email" ? name : words.on.replace("{network}", name);
      count(link, counted);
      bar.appendChild(link);
    });
    root.textContent = "";
    root.appendChild(bar);
  }

  function start() {
    var roots = document.querySelectorAll("[data-distributor-share]");
    if (!roots.length) return;
    if (!document.getElementById("dsb-style")) {
      var style = el("style"); style.id = "dsb-style"; style.textContent = CSS; document.head.appendChild(style);
    }
    Array.prototype.forEach.call(roots, function (root) {
      var url = root.getAttribute("data-url") || canonical();
      var lang = (root.getAttribute("data-lang") || "vi").toLowerCase().indexOf("en") === 0 ? "en" : "vi";
      fetch(base + "/api/shares?url=" + encodeURIComponent(url), { credentials: "omit" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .catch(function () { return null; })
        .then(function (data) { render(root, data, url, lang); });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

/* stackdoc chat: talks to the JSON API; no framework, no build step.
 *
 * Student text is only ever put on the page with textContent. Tutor replies arrive as
 * HTML rendered and sanitised by the server (Markdown without raw HTML, plus the
 * server's own SVG), so they are the only thing set with innerHTML.
 * The session id (a capability) lives in the URL's #fragment and in localStorage, so a
 * reload finds the conversation and the id is never sent in a Referer.
 */
(function () {
  "use strict";
  var app = document.getElementById("app");
  var maxPaste = parseInt(app.getAttribute("data-max-paste"), 10) || 1000000;
  var list = document.getElementById("messages");
  var form = document.getElementById("composer");
  var textarea = document.getElementById("text");
  var statusLine = document.getElementById("status");
  var sendButton = document.getElementById("send");
  var session = null;
  var busy = false;

  function setStatus(text, isError) {
    statusLine.textContent = text || "";
    statusLine.className = "status" + (isError ? " error" : "");
  }

  function api(method, path, body) {
    var options = {method: method, headers: {"Accept": "application/json"}};
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).then(function (response) {
      return response.text().then(function (raw) {
        var data = null;
        try { data = raw ? JSON.parse(raw) : null; } catch (e) { data = null; }
        if (!response.ok) {
          var message = (data && data.error) || (response.status === 413
            ? "That is too large to send: paste the part that matters." : "The server said " + response.status + ".");
          var error = new Error(message);
          error.status = response.status;
          throw error;
        }
        return data;
      });
    });
  }

  // One chat message: who said it, and its body (filled by the caller).
  function addMessage(role, who, bodyTag, bodyClass) {
    var item = document.createElement("li");
    item.className = "message " + role;
    var label = document.createElement("div");
    label.className = "who";
    label.textContent = who;
    var body = document.createElement(bodyTag);
    body.className = bodyClass;
    item.appendChild(label);
    item.appendChild(body);
    list.appendChild(item);
    return {item: item, body: body};
  }

  function addStudent(text) {
    var message = addMessage("student", "You", "pre", "student-text");
    message.body.textContent = text;  // student text is never markup
    return message.item;
  }

  function addTutor(html) {
    var message = addMessage("tutor", "Tutor", "div", "tutor-text");
    message.body.innerHTML = html;  // sanitised by the server: see tutor/render.py
    return message.item;
  }

  function showKnown(known) {
    var ul = document.getElementById("known");
    ul.textContent = "";
    (known || []).forEach(function (fact) {
      var li = document.createElement("li");
      var words = document.createElement("span");
      words.textContent = fact.text;
      li.appendChild(words);
      if (fact.evidence && fact.evidence.text) {
        var line = document.createElement("code");
        line.className = "evidence";
        var where = (fact.evidence.node || "?") + (fact.evidence.command ? "$ " + fact.evidence.command : "");
        line.title = where + (fact.evidence.line ? " (line " + fact.evidence.line + ")" : "");
        line.textContent = fact.evidence.text;
        li.appendChild(line);
      }
      ul.appendChild(li);
    });
    document.getElementById("known-empty").hidden = (known || []).length > 0;
  }

  function showFound(findings, resolved) {
    var ul = document.getElementById("found");
    var fixed = resolved || [];
    ul.textContent = "";
    (findings || []).forEach(function (finding) {
      var li = document.createElement("li");
      var title = document.createElement("strong");
      title.textContent = finding.title;
      var cause = document.createElement("code");
      cause.textContent = finding.cause;
      if (fixed.indexOf(finding.cause) >= 0) {
        // fixed since: the evidence pasted after the fix no longer shows it
        li.className = "resolved";
        var badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = "fixed";
        li.appendChild(badge);
      }
      li.appendChild(title);
      li.appendChild(document.createElement("br"));
      li.appendChild(cause);
      ul.appendChild(li);
    });
    document.getElementById("found-empty").hidden = (findings || []).length > 0;
  }

  function scrollDown() {
    var last = list.lastElementChild;
    if (last && last.scrollIntoView) { last.scrollIntoView({block: "start"}); }
  }

  function setBusy(value) {
    busy = value;
    sendButton.disabled = value;
    Array.prototype.forEach.call(document.querySelectorAll(".quick"), function (b) { b.disabled = value; });
  }

  function send(text) {
    if (busy || !session) { return; }
    if (!text.trim()) { setStatus("Type a message or paste some output first.", true); return; }
    if (new Blob([text]).size > maxPaste) {
      setStatus("That paste is larger than " + Math.round(maxPaste / 1000000) +
                " MB. Paste the part that matters: the command and the lines around what you see.", true);
      return;
    }
    var pending = addStudent(text);
    setBusy(true);
    setStatus("The tutor is reading…");
    api("POST", "/api/sessions/" + encodeURIComponent(session) + "/messages", {text: text})
      .then(function (data) {
        addTutor(data.html);
        showKnown(data.known);
        showFound(data.findings, data.resolved);
        setStatus("");
        textarea.value = "";
        scrollDown();
      })
      .catch(function (error) {
        pending.classList.add("failed");
        setStatus(error.message, true);
        if (error.status === 404) { startNew(); }
      })
      .then(function () { setBusy(false); textarea.focus(); });
  }

  function load(id) {
    return api("GET", "/api/sessions/" + encodeURIComponent(id)).then(function (data) {
      session = id;
      list.textContent = "";
      data.messages.forEach(function (m) {
        if (m.role === "tutor") { addTutor(m.html); } else { addStudent(m.text); }
      });
      showKnown(data.known);
      showFound(data.findings, data.resolved);
      scrollDown();
    });
  }

  function remember(id) {
    try { localStorage.setItem("stackdoc-session", id); } catch (e) { /* private mode */ }
    if (location.hash !== "#" + id) { history.replaceState(null, "", "#" + id); }
  }

  function startNew() {
    return api("POST", "/api/sessions").then(function (data) {
      remember(data.session);
      return load(data.session);
    }).catch(function (error) { setStatus(error.message, true); });
  }

  function resume() {
    var id = location.hash.replace(/^#/, "");
    if (!id) { try { id = localStorage.getItem("stackdoc-session") || ""; } catch (e) { id = ""; } }
    if (!id) { return startNew(); }
    return load(id).then(function () { remember(id); }).catch(function () { return startNew(); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    send(textarea.value);
  });
  textarea.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send(textarea.value);
    }
  });
  Array.prototype.forEach.call(document.querySelectorAll(".quick"), function (button) {
    button.addEventListener("click", function () { send(button.getAttribute("data-say")); });
  });
  document.getElementById("file").addEventListener("change", function (event) {
    var file = event.target.files && event.target.files[0];
    event.target.value = "";
    if (!file) { return; }
    if (file.size > maxPaste) {
      setStatus(file.name + " is larger than " + Math.round(maxPaste / 1000000) +
                " MB. Send the part that matters.", true);
      return;
    }
    var reader = new FileReader();
    reader.onload = function () { send(String(reader.result)); };
    reader.onerror = function () { setStatus("Could not read " + file.name + ".", true); };
    reader.readAsText(file);
  });
  document.getElementById("new-session").addEventListener("click", function () {
    try { localStorage.removeItem("stackdoc-session"); } catch (e) { /* ignore */ }
    history.replaceState(null, "", location.pathname);
    startNew();
  });
  resume();
})();

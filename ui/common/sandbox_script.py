"""The script every sandboxed page runs first: it takes away the ways out that no URL request interceptor sees.

WebRTC (STUN / TURN over UDP or TCP) opens sockets of its own; WebSocket, WebTransport, EventSource, beacons and
service workers are requests the interceptor does see, but a page that cannot even name them has nothing to try.
The script runs at document creation in the page's own world, in every frame, before any of the page's scripts,
and replaces each constructor with a frozen ``undefined`` the page cannot put back. A frame's window reached
through ``contentWindow`` / ``contentDocument`` is scrubbed the same way before the page gets it (an empty
``about:blank`` frame is created synchronously, before any script of ours could run in it). UDP is also closed for
the whole process by Chromium's WebRTC IP-handling policy (``ui/shell/qt_env.py``), in case anything slips past.
"""

from __future__ import annotations

from PySide6.QtWebEngineCore import QWebEngineScript

# Globals that open connections the interceptor cannot stop (WebRTC) or that only exist to talk to servers.
GLOBALS = (
    "RTCPeerConnection", "webkitRTCPeerConnection", "RTCDataChannel", "RTCIceCandidate", "RTCIceTransport",
    "RTCDtlsTransport", "RTCSctpTransport", "RTCSessionDescription", "RTCRtpSender", "RTCRtpReceiver",
    "RTCRtpTransceiver", "RTCCertificate", "RTCDTMFSender", "RTCEncodedAudioFrame", "RTCEncodedVideoFrame",
    "RTCRtpScriptTransform", "WebSocket", "WebSocketStream", "WebTransport", "EventSource", "SharedWorker",
    "ServiceWorker", "ServiceWorkerContainer", "ServiceWorkerRegistration", "PresentationRequest",
)
NAVIGATOR = ("sendBeacon", "serviceWorker", "mediaDevices", "getUserMedia", "webkitGetUserMedia", "presentation")
# <link rel=...> values that make Chromium resolve or connect ahead of any request (no interceptor sees that).
HINTS = ("preconnect", "dns-prefetch", "prefetch", "prerender", "preload", "modulepreload")

SOURCE = r"""
(function () {
  "use strict";
  // Captured now, before any page script could replace them: everything below runs on these alone (plain loops,
  // no forEach or Object.keys), so a page that poisons built-ins later cannot switch the scrubbing off.
  var apply = Reflect.apply, define = Object.defineProperty, describe = Object.getOwnPropertyDescriptor;
  var hasOwn = Object.prototype.hasOwnProperty, root = window, Str = String;
  var replace = Str.prototype.replace, lower = Str.prototype.toLowerCase, split = Str.prototype.split;
  var removeAttr = Element.prototype.removeAttribute, queryEl = Element.prototype.querySelectorAll;
  var query = DocumentFragment.prototype.querySelectorAll;
  var localName = describe(Element.prototype, "localName").get, nodeType = describe(Node.prototype, "nodeType").get;
  var attrName = describe(Attr.prototype, "name").get, attrValue = describe(Attr.prototype, "value");
  var GLOBALS = %(globals)s, NAVIGATOR = %(navigator)s, HINTS = %(hints)s;
  var LINK_TAG = /<(link)/gi, PARTIAL_LINK = /<(l(i(n)?)?)?$/i;
  // DOM calls that can create a frame (a fresh window holding the original constructors) or a <link>.
  var INSERTERS = [
    ["Node", ["appendChild", "insertBefore", "replaceChild"]],
    ["Element", ["append", "prepend", "after", "before", "replaceWith", "replaceChildren", "insertAdjacentElement",
                 "insertAdjacentHTML", "setHTMLUnsafe", "moveBefore", "setAttribute", "setAttributeNS",
                 "setAttributeNode", "setAttributeNodeNS"]],
    ["CharacterData", ["after", "before", "replaceWith"]],
    ["DocumentType", ["after", "before", "replaceWith"]],
    ["Document", ["append", "prepend", "replaceChildren", "write", "writeln", "execCommand", "open"]],
    ["DocumentFragment", ["append", "prepend", "replaceChildren"]],
    ["ShadowRoot", ["setHTMLUnsafe"]],
    ["Range", ["insertNode", "surroundContents", "createContextualFragment"]],
    ["DOMParser", ["parseFromString"]],
    ["NamedNodeMap", ["setNamedItem", "setNamedItemNS"]],
    ["DOMTokenList", ["add", "toggle", "replace"]]
  ];
  var SETTERS = [["Element", ["innerHTML", "outerHTML"]], ["ShadowRoot", ["innerHTML"]],
                 ["HTMLIFrameElement", ["srcdoc", "src"]], ["HTMLObjectElement", ["data"]],
                 ["HTMLEmbedElement", ["src"]], ["HTMLLinkElement", ["rel"]], ["DOMTokenList", ["value"]],
                 ["Attr", ["value"]], ["Node", ["nodeValue", "textContent"]]];

  function freeze(target, name) {
    try {
      define(target, name, {value: undefined, writable: false, configurable: false, enumerable: false});
    } catch (e) { /* already frozen */ }
  }
  function scrubTree(w) {  // w and every window below it; w[i] cannot be faked, unlike w.length
    scrub(w);
    try {
      for (var i = 0; w[i]; i++) scrubTree(w[i]);
    } catch (e) { /* cross-origin: that frame runs its own copy of this script */ }
  }
  // <link rel=preconnect> opens a socket no interceptor sees, even with scripts off: no markup a script hands the
  // DOM may make a <link> element, and no link may be given a hint rel afterwards.
  function cleanArg(value, isWrite) {
    if (typeof value !== "string") return value;
    value = apply(replace, value, [LINK_TAG, "<x-$1"]);
    // document.write("<li"); document.write("nk rel=preconnect ...>") must not join into one tag
    return isWrite ? apply(replace, value, [PARTIAL_LINK, "$& "]) : value;
  }
  function isHint(token) {
    token = apply(lower, Str(token), []);
    for (var i = 0; i < HINTS.length; i++) if (HINTS[i] === token) return true;
    return false;
  }
  function cleanRel(value) {
    var tokens = apply(split, Str(value), [/\s+/]), kept = "";
    for (var i = 0; i < tokens.length; i++) if (!isHint(tokens[i])) kept += (kept ? " " : "") + tokens[i];
    return kept;
  }
  function kind(node) {
    try { return apply(nodeType, node, []); } catch (e) { return 0; }
  }
  function cleanNodes(args) {
    for (var i = 0; i < args.length; i++) {
      var node = args[i];
      var type = kind(node);
      if (type !== 1 && type !== 11) continue;
      var links = apply(type === 1 ? queryEl : query, node, ["link[rel]"]);
      if (type === 1 && apply(localName, node, []) === "link") apply(removeAttr, node, ["rel"]);
      for (var j = 0; j < links.length; j++) apply(removeAttr, links[j], ["rel"]);
    }
  }
  function guarded(cls, name, fn) {
    return function () {
      var args = [], i;
      for (i = 0; i < arguments.length; i++) args.push(arguments[i]);
      if (cls === "Document" && (name === "write" || name === "writeln")) {
        for (i = 0; i < args.length; i++) args[i] = cleanArg(args[i], true);
      } else if (name === "insertAdjacentHTML") {
        args[1] = cleanArg(args[1]);
      } else if (name === "execCommand" || name === "setHTMLUnsafe" || name === "createContextualFragment" ||
                 name === "parseFromString") {
        for (i = 0; i < args.length; i++) args[i] = cleanArg(args[i]);
      } else if (name === "setAttribute" || name === "setAttributeNS") {
        // any attribute named rel (an unprefixed or prefixed name): cleaning one that is not a link's costs nothing
        var attr = apply(lower, Str(args[args.length - 2]), []);
        if (attr === "rel" || apply(replace, attr, [/^.*:/, ""]) === "rel") {
          args[args.length - 1] = cleanRel(args[args.length - 1]);
        }
      } else if (name === "setAttributeNode" || name === "setAttributeNodeNS" || name === "setNamedItem" ||
                 name === "setNamedItemNS") {
        if (kind(args[0]) === 2 && apply(lower, apply(attrName, args[0], []), []) === "rel") {
          apply(attrValue.set, args[0], [cleanRel(apply(attrValue.get, args[0], []))]);
        }
      } else if (cls === "DOMTokenList") {
        for (i = 0; i < args.length; i++) if (isHint(args[i])) args[i] = "x";
      } else {
        cleanNodes(args);
      }
      try { return apply(fn, this, args); } finally { scrubTree(root); }
    };
  }
  function guardedSetter(cls, name, set) {
    return function (value) {
      if (name === "rel" || (cls === "DOMTokenList" && name === "value")) value = cleanRel(value);
      else if (cls === "Attr" || (cls === "Node" && kind(this) === 2)) {
        if (apply(lower, apply(attrName, this, []), []) === "rel") value = cleanRel(value);
      } else if (cls === "Node") {
        return apply(set, this, [value]);  // text only: nothing to clean, no frame to make
      } else {
        value = cleanArg(value);
      }
      try { return apply(set, this, [value]); } finally { scrubTree(root); }
    };
  }
  function scrub(w) {
    var i, j, proto, name, d;
    try {
      if (apply(hasOwn, w, ["__playgroundScrubbed"])) return;
      define(w, "__playgroundScrubbed", {value: true, writable: false, configurable: false});
    } catch (e) { return; }
    for (i = 0; i < GLOBALS.length; i++) freeze(w, GLOBALS[i]);
    proto = w.Navigator && w.Navigator.prototype;
    for (i = 0; i < NAVIGATOR.length; i++) {
      if (proto) freeze(proto, NAVIGATOR[i]);
      freeze(w.navigator, NAVIGATOR[i]);
    }
    for (i = 0; i < INSERTERS.length; i++) {
      proto = w[INSERTERS[i][0]] && w[INSERTERS[i][0]].prototype;
      for (j = 0; proto && j < INSERTERS[i][1].length; j++) {
        name = INSERTERS[i][1][j];
        if (typeof proto[name] === "function") {
          define(proto, name, {value: guarded(INSERTERS[i][0], name, proto[name]), writable: false,
                               configurable: false, enumerable: false});
        }
      }
    }
    for (i = 0; i < SETTERS.length; i++) {
      proto = w[SETTERS[i][0]] && w[SETTERS[i][0]].prototype;
      for (j = 0; proto && j < SETTERS[i][1].length; j++) {
        d = describe(proto, SETTERS[i][1][j]);
        if (d && d.set) {
          define(proto, SETTERS[i][1][j], {get: d.get, set: guardedSetter(SETTERS[i][0], SETTERS[i][1][j], d.set),
                                           configurable: false, enumerable: d.enumerable});
        }
      }
    }
    // Frames the HTML parser inserts: scrubbed at the microtask checkpoint that precedes the page's next script.
    try {
      new w.MutationObserver(function () { scrubTree(root); })
        .observe(w.document, {childList: true, subtree: true, attributes: true});
    } catch (e) { /* no document yet */ }
  }
  scrubTree(root);
})();
"""

NAME = "playground-sandbox"


def guard_script() -> QWebEngineScript:
    """The QWebEngineScript that removes the network-capable APIs from every frame before the page runs."""
    def js_list(names: tuple[str, ...]) -> str:
        return "[" + ", ".join(f'"{n}"' for n in names) + "]"

    script = QWebEngineScript()
    script.setName(NAME)
    script.setSourceCode(SOURCE % {"globals": js_list(GLOBALS), "navigator": js_list(NAVIGATOR),
                                   "hints": js_list(HINTS)})
    script.setInjectionPoint(QWebEngineScript.InjectionPoint.DocumentCreation)
    script.setWorldId(QWebEngineScript.ScriptWorldId.MainWorld)  # the page's own world: it sees the removals
    script.setRunsOnSubFrames(True)
    return script

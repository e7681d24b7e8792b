// A small OpenAPI viewer for when Swagger UI is not installed: lists every operation with its
// parameters, request body, responses and examples. Text only goes through textContent.
(function () {
  "use strict";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function pretty(value) { return el("pre", {}, [JSON.stringify(value, null, 2)]); }

  function schemaName(schema) {
    if (!schema) { return ""; }
    if (schema.$ref) { return schema.$ref.split("/").pop(); }
    return schema.type || "";
  }

  function parameters(op) {
    var rows = (op.parameters || []).map(function (p) {
      return el("tr", {}, [
        el("td", {}, [el("code", {}, [p.name])]),
        el("td", {}, [p.in + (p.required ? ", required" : "")]),
        el("td", {}, [schemaName(p.schema)]),
        el("td", {}, [p.description || ""]),
      ]);
    });
    if (!rows.length) { return []; }
    return [el("h3", {}, ["Parameters"]), el("table", {}, rows)];
  }

  function requestBody(op) {
    if (!op.requestBody) { return []; }
    var media = op.requestBody.content["application/json"] || {};
    var out = [el("h3", {}, ["Request body: " + schemaName(media.schema)])];
    if (media.example !== undefined) { out.push(pretty(media.example)); }
    return out;
  }

  function responses(op) {
    var out = [el("h3", {}, ["Responses"])];
    var rows = Object.keys(op.responses || {}).map(function (status) {
      var response = op.responses[status];
      var types = Object.keys(response.content || {});
      var schema = types.length ? response.content[types[0]].schema : null;
      return el("tr", {}, [
        el("td", {}, [status]),
        el("td", {}, [types.join(", ")]),
        el("td", {}, [schemaName(schema)]),
        el("td", {}, [response.description || ""]),
      ]);
    });
    out.push(el("table", {}, rows));
    Object.keys(op.responses || {}).forEach(function (status) {
      var content = op.responses[status].content || {};
      Object.keys(content).forEach(function (type) {
        if (content[type].example !== undefined && type.indexOf("json") >= 0) {
          out.push(el("h3", {}, ["Example " + status]), pretty(content[type].example));
        }
      });
    });
    return out;
  }

  function operation(spec, path, method, op) {
    var secured = op.security ? op.security.length > 0 : !!spec.security;
    var head = el("summary", {}, [
      el("span", { class: "method " + method }, [method]),
      el("span", { class: "path" }, [path]),
      el("span", { class: "summary" }, [op.summary || ""]),
      el("span", { class: "lock" }, [secured ? "(bearer token)" : ""]),
    ]);
    var body = el("div", { class: "body" }, [el("p", {}, [op.description || ""])]
      .concat(parameters(op), requestBody(op), responses(op)));
    return el("details", { class: "op", id: op.operationId || "" }, [head, body]);
  }

  function render(root, spec) {
    root.appendChild(el("h1", {}, [spec.info.title + " " + spec.info.version]));
    root.appendChild(el("p", {}, [spec.info.description || ""]));
    Object.keys(spec.paths).forEach(function (path) {
      Object.keys(spec.paths[path]).forEach(function (method) {
        root.appendChild(operation(spec, path, method, spec.paths[path][method]));
      });
    });
    root.appendChild(el("h2", {}, ["Schemas"]));
    Object.keys(spec.components.schemas).forEach(function (name) {
      root.appendChild(el("details", { class: "op" }, [
        el("summary", {}, [el("span", { class: "path" }, [name])]),
        el("div", { class: "body" }, [pretty(spec.components.schemas[name])]),
      ]));
    });
  }

  window.addEventListener("load", function () {
    var root = document.getElementById("viewer");
    fetch(root.dataset.specUrl, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error(response.status + " " + response.statusText); }
        return response.json();
      })
      .then(function (spec) { render(root, spec); })
      .catch(function (error) {
        root.appendChild(el("p", {}, ["Could not load the API description: " + error.message]));
      });
  });
})();

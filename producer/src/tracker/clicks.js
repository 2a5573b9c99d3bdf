// Automatic events, served in /tracker.clicks.js only: producer/src/tracker.rs inserts this
// fragment into tracker.js where it says "automatic events", so it uses the names in scope there.
// data-outbound-links: a click on a link to another host sends "Outbound Link: Click".
// data-file-downloads: a click on a link to a file sends "File Download"; the attribute's value
// lists the file extensions ("pdf,zip"), or these common ones when it is empty.
// Both carry the link as the property url (at most 2,000 characters, the property limit).
var outbound = attr("outbound-links") != null;
var downloads = attr("file-downloads");
var fileTypes = (downloads || "pdf,xlsx,docx,txt,rtf,csv,exe,key,pps,ppt,pptx,7z,pkg,rar,gz,zip,avi,mov,mp4,mpeg,wmv,midi,mp3,wav,wma,dmg,iso,msi,apk").split(",");
on("click", (event) => {
  var link = event.target.closest && event.target.closest("a[href]");
  if (!link) return;
  var url = new URL(link.href, loc.href);
  var file = url.pathname.split("/").pop().split(".");
  var send = (name) => post({ name, props: [{ key: "url", value: url.href.slice(0, 2000) }] });
  if (downloads != null && file.length > 1 && fileTypes.includes(file.pop().toLowerCase())) send("File Download");
  else if (outbound && url.host != loc.host && /^https?:$/.test(url.protocol)) send("Outbound Link: Click");
}, doc);

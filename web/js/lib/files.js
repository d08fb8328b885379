// Files chosen by the user: from a drop (files and whole folders, walked with
// webkitGetAsEntry) or from an <input type="file"> (with `webkitdirectory` for a folder).
// Each comes back as {file, path}: the path keeps its folders ("cat/img001.jpg").

/** Read every entry of a directory (readEntries answers in batches until it answers none). */
function readAll(reader) {
  return new Promise((resolve, reject) => {
    const entries = [];
    const next = () =>
      reader.readEntries((batch) => {
        if (!batch.length) resolve(entries);
        else {
          entries.push(...batch);
          next();
        }
      }, reject);
    next();
  });
}

function fileOf(entry) {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}

async function walk(entry, found) {
  if (entry.isFile) {
    found.push({ file: await fileOf(entry), path: entry.fullPath.replace(/^\//, "") });
  } else if (entry.isDirectory) {
    for (const child of await readAll(entry.createReader())) await walk(child, found);
  }
}

/**
 * Every file of a drop, folders walked recursively. The DataTransfer is only readable during
 * the drop event, so its entries are taken synchronously before anything is awaited.
 */
export async function filesFromDrop(dataTransfer) {
  const taken = [...(dataTransfer.items || [])]
    .filter((item) => item.kind === "file")
    .map((item) => ({ entry: item.webkitGetAsEntry?.() || null, file: item.getAsFile() }));
  if (!taken.length) {
    return [...(dataTransfer.files || [])].map((file) => ({ file, path: file.name }));
  }
  const found = [];
  for (const { entry, file } of taken) {
    if (entry) await walk(entry, found);
    else if (file) found.push({ file, path: file.name }); // no entry API (or a synthetic drop)
  }
  return found;
}

/** The files of a file input; a folder input gives their paths inside the folder. */
export function filesFromInput(input) {
  return [...input.files].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
}

/** Hidden files and folders (".DS_Store", ".git/...") are left out of uploads. */
export function isHidden(path) {
  return path.split("/").some((part) => part.startsWith("."));
}

/** The folder a file is directly in ("cats" for "photos/cats/a.jpg"), "" for a loose file. */
export function folderOf(path) {
  const parts = path.split("/");
  return parts.length > 1 ? parts[parts.length - 2] : "";
}

// English and Chinese. navigator.language picks; the switch overrides and is kept in
// localStorage. t(key, {name: value}) fills {name}; a missing key falls back to English.

const LANG_KEY = "draftdl.lang";
export const LANGS = ["en", "zh"];

const en = {
  "app.skip": "Skip to content",
  "app.language": "Language",
  "nav.label": "Main",
  "nav.tasks": "Tasks",
  "nav.submit": "Submit",
  "nav.settings": "Settings",
  "conn.connecting": "Connecting…",
  "conn.live": "Live",
  "conn.reconnecting": "Reconnecting…",
  "conn.locked": "Token needed",

  "status.pending": "Pending",
  "status.downloading": "Downloading",
  "status.paused": "Paused",
  "status.processing": "Building draft",
  "status.completed": "Completed",
  "status.failed": "Failed",
  "status.cancelled": "Cancelled",
  "fstatus.waiting": "Waiting",
  "fstatus.active": "Downloading",
  "fstatus.paused": "Paused",
  "fstatus.complete": "Complete",
  "fstatus.error": "Error",
  "fstatus.removed": "Removed",

  "common.cancel": "Cancel",
  "common.delete": "Delete",
  "common.loading": "Loading…",
  "common.refresh": "Refresh",
  "common.save": "Save",
  "common.set": "Set",
  "common.working": "Working…",

  "error.network": "The server cannot be reached.",
  "error.status": "The server answered {status}.",
  "auth.title": "API token",
  "auth.needed": "This server needs its API token.",
  "auth.refused": "The server refused that token. Try again.",
  "auth.label": "Token",
  "auth.submit": "Use token",
  "auth.kept": "Kept in this browser tab until it is closed.",
  "auth.missing": "Missing or wrong API token.",

  "list.heading": "Tasks",
  "list.filters": "Filters",
  "list.search": "Search titles",
  "list.status": "Status",
  "list.perPage": "Per page",
  "list.label": "Tasks, newest first",
  "list.empty": "No tasks.",
  "list.newer": "‹ Newer",
  "list.older": "Older ›",
  "list.pages": "Pages",
  "list.range": "{first}–{last} of {total}",
  "list.untitled": "(untitled)",
  "list.select": "Select {title}",
  "list.progressOf": "Progress of {title}",
  "list.files": "{done}/{total} files",
  "list.failed": "{n} failed",
  "col.title": "Title",
  "col.status": "Status",
  "col.progress": "Progress",
  "col.size": "Size",
  "col.speed": "Speed",
  "col.eta": "ETA",
  "col.files": "Files",
  "col.created": "Created",

  "bulk.label": "With the selected tasks",
  "bulk.selectAll": "Select all on this page",
  "bulk.selected": "{n} selected",
  "bulk.retry": "Retry failed ({n})",
  "bulk.cancel": "Cancel ({n})",
  "bulk.delete": "Delete finished ({n})",
  "bulk.deleteTitle": "Delete {n} finished tasks?",
  "bulk.deleteText": "Their records go; their drafts stay.",
  "bulk.done.retry": "{n} retried.",
  "bulk.done.cancel": "{n} cancelled.",
  "bulk.done.delete": "{n} deleted.",
  "bulk.refused": "{n} refused:",

  "detail.heading": "Task",
  "detail.back": "← All tasks",
  "detail.progress": "Progress",
  "detail.updated": "Updated",
  "detail.completed": "Finished",
  "detail.priority": "Priority",
  "detail.limit": "Speed cap",
  "detail.noLimit": "none",
  "detail.limitHint": "e.g. 2M",
  "detail.badPriority": "The priority is a whole number.",
  "detail.failed": "Why it failed",
  "detail.draft": "Draft",
  "detail.noDraft": "not built yet",
  "detail.copy": "Copy path",
  "detail.copied": "Path copied.",
  "detail.copyFailed": "Could not copy: select the path and copy it.",
  "detail.zip": "Download draft (.zip)",
  "detail.zipRoot": "JianYing draft folder on the other machine (optional)",
  "detail.zipping": "Packing the draft…",
  "detail.zipped": "Downloaded {name}.",
  "detail.controls": "Control",
  "detail.keepFiles": "keep partial files",
  "detail.retryHint": "Retry downloads again what a failed or cancelled task lacks; a new URL typed next to a file replaces its link.",
  "detail.files": "Files",
  "detail.more": "Show {n} more (of {total})",
  "detail.notFound": "No task with this id.",
  "detail.deleted": "This task was deleted.",
  "file.name": "Name",
  "file.url": "URL",
  "file.attempts": "Tries",
  "file.nextRetry": "Next try",
  "file.error": "Error",
  "file.newUrl": "new URL (optional)",
  "file.newUrlFor": "New URL for {name}",
  "file.progressOf": "Progress of {name}",

  "action.pause": "Pause",
  "action.resume": "Resume",
  "action.cancel": "Cancel task",
  "action.retry": "Retry",
  "action.regenerate": "Rebuild draft",
  "action.delete": "Delete",
  "done.pause": "Paused.",
  "done.resume": "Resumed.",
  "done.cancel": "Cancelled.",
  "done.retry": "Retried.",
  "done.regenerate": "The draft is built again.",
  "done.delete": "Task deleted.",
  "done.priority": "Priority set to {n}.",
  "done.limit": "Speed cap set to {limit}.",
  "done.noLimit": "Speed cap removed.",
  "delete.title": "Delete this task?",
  "delete.text": "“{title}” is stopped if it runs, and its record is removed.",
  "delete.files": "also its downloaded files",
  "delete.draft": "also its draft folder",

  "submit.heading": "Submit a job",
  "submit.json": "Job (JSON)",
  "submit.hint": "Paste the job, or pick a file below. It is checked before anything is stored.",
  "submit.file": "Or pick a file",
  "submit.send": "Submit",
  "submit.example": "Insert an example",
  "submit.loaded": "Loaded {name}.",
  "submit.rejected": "Not accepted:",
  "submit.problems": "Problems",
  "submit.syntax": "JSON",
  "submit.syntaxAt": "line {line}, column {column}: {message}",
  "submit.server": "server",

  "settings.heading": "Settings and health",
  "settings.speed": "Overall speed limit",
  "settings.current": "Now:",
  "settings.noLimit": "no limit",
  "settings.limit": "Limit",
  "settings.limitHint": "Bytes per second, or with K or M (500K, 10M); 0 for none. Applied at once and kept across restarts.",
  "settings.saved": "Saved and applied.",
  "settings.health": "Health",
  "health.ok": "OK",
  "health.degraded": "Degraded",
  "health.version": "draftdl {version}",
  "health.yes": "yes",
  "health.no": "no",
  "health.running": "Running",
  "health.state": "State",
  "health.aria2Version": "Version",
  "health.restarts": "Restarts",
  "health.pid": "Process id",
  "health.managed": "Managed by draftdl",
  "health.binary": "Program",
  "health.reason": "Why not running",
  "health.drafts": "Drafts",
  "health.root": "Folder",
  "health.why": "Why this folder",
  "health.system": "System",
  "health.database": "Database answers",
  "health.disk": "Data folder",
  "health.free": "Free space",
  "health.minimum": "minimum",
  "health.tasks": "Tasks",
  "health.taskCounts": "{active} of {max} running, {live} unfinished",
};

const zh = {
  "app.skip": "跳到内容",
  "app.language": "语言",
  "nav.label": "主导航",
  "nav.tasks": "任务",
  "nav.submit": "提交",
  "nav.settings": "设置",
  "conn.connecting": "连接中…",
  "conn.live": "实时",
  "conn.reconnecting": "重新连接中…",
  "conn.locked": "需要令牌",

  "status.pending": "排队中",
  "status.downloading": "下载中",
  "status.paused": "已暂停",
  "status.processing": "生成草稿中",
  "status.completed": "已完成",
  "status.failed": "失败",
  "status.cancelled": "已取消",
  "fstatus.waiting": "等待",
  "fstatus.active": "下载中",
  "fstatus.paused": "已暂停",
  "fstatus.complete": "完成",
  "fstatus.error": "出错",
  "fstatus.removed": "已移除",

  "common.cancel": "取消",
  "common.delete": "删除",
  "common.loading": "加载中…",
  "common.refresh": "刷新",
  "common.save": "保存",
  "common.set": "设置",
  "common.working": "处理中…",

  "error.network": "无法连接服务器。",
  "error.status": "服务器返回 {status}。",
  "auth.title": "API 令牌",
  "auth.needed": "此服务器需要 API 令牌。",
  "auth.refused": "服务器拒绝了该令牌，请重试。",
  "auth.label": "令牌",
  "auth.submit": "使用令牌",
  "auth.kept": "仅保存在此浏览器标签页中，关闭后清除。",
  "auth.missing": "缺少或错误的 API 令牌。",

  "list.heading": "任务",
  "list.filters": "筛选",
  "list.search": "搜索标题",
  "list.status": "状态",
  "list.perPage": "每页",
  "list.label": "任务（最新在前）",
  "list.empty": "没有任务。",
  "list.newer": "‹ 较新",
  "list.older": "较早 ›",
  "list.pages": "分页",
  "list.range": "第 {first}–{last} 个，共 {total} 个",
  "list.untitled": "（无标题）",
  "list.select": "选择 {title}",
  "list.progressOf": "{title} 的进度",
  "list.files": "{done}/{total} 个文件",
  "list.failed": "{n} 个失败",
  "col.title": "标题",
  "col.status": "状态",
  "col.progress": "进度",
  "col.size": "大小",
  "col.speed": "速度",
  "col.eta": "剩余时间",
  "col.files": "文件",
  "col.created": "创建时间",

  "bulk.label": "对所选任务",
  "bulk.selectAll": "全选本页",
  "bulk.selected": "已选 {n} 个",
  "bulk.retry": "重试失败的 ({n})",
  "bulk.cancel": "取消 ({n})",
  "bulk.delete": "删除已结束的 ({n})",
  "bulk.deleteTitle": "删除 {n} 个已结束的任务？",
  "bulk.deleteText": "将删除其记录；草稿保留。",
  "bulk.done.retry": "已重试 {n} 个。",
  "bulk.done.cancel": "已取消 {n} 个。",
  "bulk.done.delete": "已删除 {n} 个。",
  "bulk.refused": "{n} 个被拒绝：",

  "detail.heading": "任务",
  "detail.back": "← 全部任务",
  "detail.progress": "进度",
  "detail.updated": "更新时间",
  "detail.completed": "结束时间",
  "detail.priority": "优先级",
  "detail.limit": "限速",
  "detail.noLimit": "无",
  "detail.limitHint": "例如 2M",
  "detail.badPriority": "优先级必须是整数。",
  "detail.failed": "失败原因",
  "detail.draft": "草稿",
  "detail.noDraft": "尚未生成",
  "detail.copy": "复制路径",
  "detail.copied": "路径已复制。",
  "detail.copyFailed": "无法复制：请手动选中路径复制。",
  "detail.zip": "下载草稿 (.zip)",
  "detail.zipRoot": "另一台电脑上的剪映草稿文件夹（可选）",
  "detail.zipping": "正在打包草稿…",
  "detail.zipped": "已下载 {name}。",
  "detail.controls": "控制",
  "detail.keepFiles": "保留未完成的文件",
  "detail.retryHint": "重试会重新下载失败或已取消任务所缺的文件；在文件旁填写新网址即可替换其链接。",
  "detail.files": "文件",
  "detail.more": "再显示 {n} 个（共 {total} 个）",
  "detail.notFound": "没有这个任务。",
  "detail.deleted": "此任务已被删除。",
  "file.name": "名称",
  "file.url": "网址",
  "file.attempts": "尝试次数",
  "file.nextRetry": "下次重试",
  "file.error": "错误",
  "file.newUrl": "新网址（可选）",
  "file.newUrlFor": "{name} 的新网址",
  "file.progressOf": "{name} 的进度",

  "action.pause": "暂停",
  "action.resume": "继续",
  "action.cancel": "取消任务",
  "action.retry": "重试",
  "action.regenerate": "重新生成草稿",
  "action.delete": "删除",
  "done.pause": "已暂停。",
  "done.resume": "已继续。",
  "done.cancel": "已取消。",
  "done.retry": "已重试。",
  "done.regenerate": "正在重新生成草稿。",
  "done.delete": "任务已删除。",
  "done.priority": "优先级已设为 {n}。",
  "done.limit": "限速已设为 {limit}。",
  "done.noLimit": "已取消限速。",
  "delete.title": "删除此任务？",
  "delete.text": "“{title}”若在运行将被停止，其记录将被删除。",
  "delete.files": "同时删除已下载的文件",
  "delete.draft": "同时删除草稿文件夹",

  "submit.heading": "提交任务",
  "submit.json": "任务 (JSON)",
  "submit.hint": "粘贴任务，或在下方选择文件。存储前会先检查。",
  "submit.file": "或选择文件",
  "submit.send": "提交",
  "submit.example": "插入示例",
  "submit.loaded": "已载入 {name}。",
  "submit.rejected": "未被接受：",
  "submit.problems": "问题",
  "submit.syntax": "JSON",
  "submit.syntaxAt": "第 {line} 行第 {column} 列：{message}",
  "submit.server": "服务器",

  "settings.heading": "设置与状态",
  "settings.speed": "总下载限速",
  "settings.current": "当前：",
  "settings.noLimit": "不限速",
  "settings.limit": "限速",
  "settings.limitHint": "每秒字节数，或带 K、M（500K、10M）；0 表示不限。立即生效，重启后保留。",
  "settings.saved": "已保存并生效。",
  "settings.health": "运行状态",
  "health.ok": "正常",
  "health.degraded": "异常",
  "health.version": "draftdl {version}",
  "health.yes": "是",
  "health.no": "否",
  "health.running": "运行中",
  "health.state": "状态",
  "health.aria2Version": "版本",
  "health.restarts": "重启次数",
  "health.pid": "进程号",
  "health.managed": "由 draftdl 管理",
  "health.binary": "程序",
  "health.reason": "未运行原因",
  "health.drafts": "草稿",
  "health.root": "文件夹",
  "health.why": "选用原因",
  "health.system": "系统",
  "health.database": "数据库可用",
  "health.disk": "数据文件夹",
  "health.free": "可用空间",
  "health.minimum": "最低",
  "health.tasks": "任务",
  "health.taskCounts": "运行 {active}/{max} 个，未结束 {live} 个",
};

const MESSAGES = { en, zh };
const listeners = new Set();

function stored() {
  try {
    return localStorage.getItem(LANG_KEY);
  } catch {
    return null;
  }
}

function fromBrowser() {
  const wanted = navigator.languages?.length ? navigator.languages : [navigator.language || "en"];
  for (const tag of wanted) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (LANGS.includes(base)) return base;
  }
  return "en";
}

let current = LANGS.includes(stored()) ? stored() : fromBrowser();

export function lang() {
  return current;
}

export function setLang(value) {
  if (!LANGS.includes(value)) return;
  try {
    localStorage.setItem(LANG_KEY, value);
  } catch {
    /* private mode: this page only */
  }
  if (value === current) return;
  current = value;
  document.documentElement.lang = htmlLang();
  for (const listener of listeners) listener(value);
}

export function onLangChange(listener) {
  listeners.add(listener);
}

export function htmlLang() {
  return current === "zh" ? "zh-CN" : "en";
}

export function t(key, vars) {
  const text = MESSAGES[current][key] ?? en[key] ?? key;
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

/** Static text of the page: data-i18n="key" sets the text, data-i18n-label the aria-label. */
export function translate(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
}

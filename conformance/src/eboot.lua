-- eboot.lua: a Wireshark/tshark dissector for the Erlang/OTP network boot protocol
-- (erl_boot_server and erl -loader inet).
--
-- Discovery: "EBOOTQ" ++ ErtsVersion from a client to UDP 4368, and
-- "EBOOTR" ++ [Priority, PortHi, PortLo] ++ ErtsVersion back from the server. Then the client
-- connects to the announced TCP port (on the answer's source address) and exchanges
-- {packet,4} frames holding external term format: requests such as {get,"/path"} and replies
-- such as {get,{ok,<<...>>}}.
--
-- Wireshark knows port 4368 only by its service name "wxbrief"; this script takes the port
-- over. The TCP port is learned from each EBOOTR as it is dissected, so a capture that starts
-- after discovery shows no boot connection: open it with two passes (tshark -2) or add the port
-- by hand with "Decode As..." (protocol EBOOT-TCP).
--
-- Usage:
--   tshark -X lua_script:eboot.lua -r boot.pcap
--   tshark -X lua_script:eboot.lua -2 -r boot.pcap -T fields -e frame.number -e eboot.kind
--   or copy the file to ~/.local/lib/wireshark/plugins/
--
-- Fields: eboot.kind (query, answer, request, reply), eboot.version, eboot.priority,
-- eboot.port, eboot.length, eboot.command, eboot.file, eboot.result (ok, error),
-- eboot.reason, eboot.term (the message as an Erlang term, binaries over 64 bytes as
-- <<N bytes>>).
--
-- Written for Lua 5.1 to 5.4 (Wireshark 3.x to 4.4+): no bit library, no utf8 library, no
-- string.unpack.

local EBOOT_PORT = 4368
-- Binaries up to this many bytes are shown whole (as erlboot decode does).
local BINARY_SHOWN = 64
-- Term text is cut after this many bytes (at a character boundary).
local TEXT_MAX = 400
-- Nesting deeper than this is not a boot message: report it rather than recurse on.
local DEPTH_MAX = 100

local eboot = Proto("eboot", "Erlang/OTP Boot Protocol")
local eboot_tcp = Proto("eboot_tcp", "Erlang/OTP Boot Protocol {packet,4} session")

local f = {
    kind = ProtoField.string("eboot.kind", "Kind"),
    version = ProtoField.string("eboot.version", "ERTS version"),
    priority = ProtoField.uint8("eboot.priority", "Priority"),
    port = ProtoField.uint16("eboot.port", "Boot server TCP port"),
    length = ProtoField.uint32("eboot.length", "Frame length"),
    command = ProtoField.string("eboot.command", "Command"),
    file = ProtoField.string("eboot.file", "File"),
    result = ProtoField.string("eboot.result", "Result"),
    reason = ProtoField.string("eboot.reason", "Error reason"),
    term = ProtoField.string("eboot.term", "Term"),
    garbage = ProtoField.bytes("eboot.garbage", "Unrecognised datagram"),
}
eboot.fields = { f.kind, f.version, f.priority, f.port, f.length, f.command, f.file,
    f.result, f.reason, f.term, f.garbage }

local ex_malformed = ProtoExpert.new("eboot.malformed", "Malformed external term",
    expert.group.MALFORMED, expert.severity.ERROR)
local ex_unknown = ProtoExpert.new("eboot.unknown", "Not an EBOOTQ/EBOOTR datagram",
    expert.group.PROTOCOL, expert.severity.WARN)
eboot.experts = { ex_malformed, ex_unknown }

-- Boot servers learned from EBOOTR answers: "address:port" -> true.
local servers = {}
local tcp_table = DissectorTable.get("tcp.port")
local registered_ports = {}

local function learn_server(address, port)
    servers[address .. ":" .. port] = true
    if not registered_ports[port] then
        registered_ports[port] = true
        tcp_table:add(port, eboot_tcp)
    end
end

function eboot.init()
    -- A new file: forget the servers of the last one (the port registrations stay; the
    -- address check keeps them from claiming other traffic).
    servers = {}
end

---------------------------------------------------------------------------------------------
-- External term format, read into small tables for display.
-- A node is { t = "int"|"float"|"big"|"atom"|"tuple"|"list"|"string"|"binary"|"bits"|
--             "map"|"improper"|"other", ... }.

local function utf8_char(cp)
    if cp < 0x80 then
        return string.char(cp)
    elseif cp < 0x800 then
        return string.char(0xC0 + math.floor(cp / 0x40), 0x80 + cp % 0x40)
    elseif cp < 0x10000 then
        return string.char(0xE0 + math.floor(cp / 0x1000),
            0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
    else
        return string.char(0xF0 + math.floor(cp / 0x40000),
            0x80 + math.floor(cp / 0x1000) % 0x40,
            0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
    end
end

-- Code points Erlang's ~p (and erlboot) print inside a string: no control characters but
-- newline and tab.
local function printable(cp)
    if type(cp) ~= "number" or cp ~= math.floor(cp) then return false end
    if cp == 9 or cp == 10 then return true end
    if cp < 0x20 or (cp >= 0x7F and cp <= 0x9F) then return false end
    if cp >= 0xD800 and cp <= 0xDFFF then return false end
    return cp <= 0x10FFFF
end

local Reader = {}
Reader.__index = Reader

local function reader(s)
    return setmetatable({ s = s, pos = 1 }, Reader)
end

function Reader:need(n)
    if self.pos + n - 1 > #self.s then
        error("term ends early", 0)
    end
end

function Reader:u8()
    self:need(1)
    local b = self.s:byte(self.pos)
    self.pos = self.pos + 1
    return b
end

function Reader:u16()
    local hi = self:u8()
    return hi * 256 + self:u8()
end

function Reader:u32()
    local hi = self:u16()
    return hi * 65536 + self:u16()
end

function Reader:i32()
    local v = self:u32()
    if v >= 0x80000000 then v = v - 0x100000000 end
    return v
end

function Reader:bytes(n)
    self:need(n)
    local b = self.s:sub(self.pos, self.pos + n - 1)
    self.pos = self.pos + n
    return b
end

function Reader:skip(n)
    self:need(n)
    self.pos = self.pos + n
end

-- Reads a binary's bytes only when they will be shown; a 3 MB file is skipped, not copied.
function Reader:binary(n)
    if n <= BINARY_SHOWN then
        return { t = "binary", len = n, data = self:bytes(n) }
    end
    self:skip(n)
    return { t = "binary", len = n }
end

local function ieee754(s)
    local b = { s:byte(1, 8) }
    local sign = b[1] >= 128 and -1 or 1
    local exponent = (b[1] % 128) * 16 + math.floor(b[2] / 16)
    local mantissa = b[2] % 16
    for i = 3, 8 do mantissa = mantissa * 256 + b[i] end
    if exponent == 0 then
        return sign * mantissa * 2 ^ -1074
    elseif exponent == 0x7FF then
        return sign * (mantissa == 0 and math.huge or 0 / 0)
    end
    return sign * (1 + mantissa / 2 ^ 52) * 2 ^ (exponent - 1023)
end

function Reader:term(depth)
    if depth > DEPTH_MAX then error("term nested too deep", 0) end
    local tag = self:u8()
    if tag == 97 then -- SMALL_INTEGER_EXT
        return { t = "int", v = self:u8() }
    elseif tag == 98 then -- INTEGER_EXT
        return { t = "int", v = self:i32() }
    elseif tag == 70 then -- NEW_FLOAT_EXT
        return { t = "float", v = ieee754(self:bytes(8)) }
    elseif tag == 99 then -- FLOAT_EXT: 31 bytes of text
        return { t = "float", text = (self:bytes(31):gsub("%z.*", "")) }
    elseif tag == 100 or tag == 118 then -- ATOM_EXT, ATOM_UTF8_EXT
        local n = self:u16()
        return { t = "atom", v = self:bytes(n) }
    elseif tag == 115 or tag == 119 then -- SMALL_ATOM_EXT, SMALL_ATOM_UTF8_EXT
        local n = self:u8()
        return { t = "atom", v = self:bytes(n) }
    elseif tag == 104 or tag == 105 then -- SMALL_TUPLE_EXT, LARGE_TUPLE_EXT
        local n = tag == 104 and self:u8() or self:u32()
        local elems = {}
        for i = 1, n do elems[i] = self:term(depth + 1) end
        return { t = "tuple", elems = elems }
    elseif tag == 106 then -- NIL_EXT
        return { t = "list", elems = {} }
    elseif tag == 107 then -- STRING_EXT: a list of bytes
        local n = self:u16()
        local s = self:bytes(n)
        local elems = {}
        for i = 1, n do elems[i] = { t = "int", v = s:byte(i) } end
        return { t = "list", elems = elems }
    elseif tag == 108 then -- LIST_EXT
        local n = self:u32()
        -- Every element is at least one byte: refuse a count the frame cannot hold before
        -- looping over it.
        self:need(n)
        local elems = {}
        for i = 1, n do elems[i] = self:term(depth + 1) end
        local tail = self:term(depth + 1)
        if tail.t == "list" and #tail.elems == 0 then
            return { t = "list", elems = elems }
        end
        return { t = "improper", elems = elems, tail = tail }
    elseif tag == 109 then -- BINARY_EXT
        return self:binary(self:u32())
    elseif tag == 77 then -- BIT_BINARY_EXT
        local n = self:u32()
        local bits = self:u8()
        self:skip(n)
        return { t = "bits", len = n, bits = bits }
    elseif tag == 110 or tag == 111 then -- SMALL_BIG_EXT, LARGE_BIG_EXT
        local n = tag == 110 and self:u8() or self:u32()
        local negative = self:u8() ~= 0
        local digits = self:bytes(n)
        local hex = {}
        for i = n, 1, -1 do hex[#hex + 1] = string.format("%02X", digits:byte(i)) end
        return { t = "big", text = (negative and "-" or "") .. "16#" .. table.concat(hex) }
    elseif tag == 116 then -- MAP_EXT
        local n = self:u32()
        self:need(n)
        local pairs_ = {}
        for i = 1, n do
            local k = self:term(depth + 1)
            pairs_[i] = { k, self:term(depth + 1) }
        end
        return { t = "map", pairs = pairs_ }
    elseif tag == 88 or tag == 103 then -- NEW_PID_EXT, PID_EXT
        local node = self:term(depth + 1)
        local id, serial = self:u32(), self:u32()
        self:skip(tag == 88 and 4 or 1)
        return { t = "other", text = "#Pid<" .. (node.v or "?") .. "." .. id .. "." .. serial .. ">" }
    elseif tag == 89 or tag == 102 or tag == 120 then -- NEW_PORT_EXT, PORT_EXT, V4_PORT_EXT
        local node = self:term(depth + 1)
        self:skip(tag == 120 and 12 or (tag == 89 and 8 or 5))
        return { t = "other", text = "#Port<" .. (node.v or "?") .. ">" }
    elseif tag == 90 or tag == 114 then -- NEWER_REFERENCE_EXT, NEW_REFERENCE_EXT
        local words = self:u16()
        local node = self:term(depth + 1)
        self:skip((tag == 90 and 4 or 1) + 4 * words)
        return { t = "other", text = "#Ref<" .. (node.v or "?") .. ">" }
    elseif tag == 113 then -- EXPORT_EXT
        local m, fn, arity = self:term(depth + 1), self:term(depth + 1), self:term(depth + 1)
        return { t = "other", text = "fun " .. (m.v or "?") .. ":" .. (fn.v or "?") .. "/" .. (arity.v or "?") }
    elseif tag == 80 then -- compressed
        local n = self:u32()
        self:skip(#self.s - self.pos + 1)
        return { t = "other", text = "<<compressed term, " .. n .. " bytes>>" }
    end
    error(string.format("unknown term tag %d", tag), 0)
end

-- Decodes a whole frame: 131, one term, nothing after it.
local function decode(s)
    local r = reader(s)
    local ok, result = pcall(function()
        if r:u8() ~= 131 then error("no version byte 131", 0) end
        local term = r:term(0)
        if r.pos <= #s then error(string.format("%d bytes after the term", #s - r.pos + 1), 0) end
        return term
    end)
    if ok then return result end
    return nil, result
end

---------------------------------------------------------------------------------------------
-- Terms as Erlang text.

local RESERVED = {}
for w in ("after and andalso band begin bnot bor bsl bsr bxor case catch cond div else end " ..
    "fun if let maybe not of or orelse receive rem try when xor"):gmatch("%S+") do
    RESERVED[w] = true
end

local function quote_chars(s, quote)
    return (s:gsub("[%z\1-\31\\" .. quote .. "]", function(c)
        if c == "\\" then return "\\\\" end
        if c == "\n" then return "\\n" end
        if c == "\t" then return "\\t" end
        if c == quote then return "\\" .. c end
        return string.format("\\x{%X}", c:byte())
    end))
end

local function atom_text(a)
    if a:match("^[a-z][%w_@]*$") and not RESERVED[a] then return a end
    return "'" .. quote_chars(a, "'") .. "'"
end

-- A list's text as a string, when every element is a printable code point.
local function list_string(elems)
    if #elems == 0 then return nil end
    local out = {}
    for i, e in ipairs(elems) do
        if e.t ~= "int" or not printable(e.v) then return nil end
        out[i] = utf8_char(e.v)
    end
    return table.concat(out)
end

local function binary_text(b)
    if b.data == nil then return "<<" .. b.len .. " bytes>>" end
    if b.len == 0 then return "<<>>" end
    local s = b.data
    -- Shown as a string when it is printable ASCII/UTF-8 text (a close enough test for a
    -- display: no control bytes).
    if not s:find("[%z\1-\8\11-\31\127]") then
        return '<<"' .. quote_chars(s, '"') .. '">>'
    end
    local bytes = {}
    for i = 1, #s do bytes[i] = tostring(s:byte(i)) end
    return "<<" .. table.concat(bytes, ",") .. ">>"
end

local function number_text(v)
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then
        return string.format("%d", v)
    end
    return tostring(v)
end

local function text(node, out)
    local t = node.t
    if t == "int" then
        out[#out + 1] = number_text(node.v)
    elseif t == "float" then
        out[#out + 1] = node.text or string.format("%.17g", node.v)
    elseif t == "big" or t == "other" then
        out[#out + 1] = node.text
    elseif t == "atom" then
        out[#out + 1] = atom_text(node.v)
    elseif t == "binary" then
        out[#out + 1] = binary_text(node)
    elseif t == "bits" then
        out[#out + 1] = "<<" .. node.len .. " bytes:" .. node.bits .. " bits>>"
    elseif t == "tuple" or t == "list" or t == "improper" then
        local s = t == "list" and list_string(node.elems)
        if s then
            out[#out + 1] = '"' .. quote_chars(s, '"') .. '"'
            return
        end
        out[#out + 1] = t == "tuple" and "{" or "["
        for i, e in ipairs(node.elems) do
            if i > 1 then out[#out + 1] = "," end
            text(e, out)
        end
        if t == "improper" then
            out[#out + 1] = "|"
            text(node.tail, out)
        end
        out[#out + 1] = t == "tuple" and "}" or "]"
    elseif t == "map" then
        out[#out + 1] = "#{"
        for i, kv in ipairs(node.pairs) do
            if i > 1 then out[#out + 1] = "," end
            text(kv[1], out)
            out[#out + 1] = " => "
            text(kv[2], out)
        end
        out[#out + 1] = "}"
    end
end

local function term_text(node)
    local out = {}
    text(node, out)
    local s = table.concat(out)
    if #s > TEXT_MAX then
        -- Cut at a character boundary: never inside a UTF-8 sequence.
        local cut = TEXT_MAX
        while cut > 0 and s:byte(cut + 1) >= 0x80 and s:byte(cut + 1) < 0xC0 do
            cut = cut - 1
        end
        s = s:sub(1, cut) .. "..."
    end
    return s
end

---------------------------------------------------------------------------------------------
-- Discovery (UDP 4368).

local function dissect_discovery(tvb, pinfo, tree)
    local len = tvb:len()
    pinfo.cols.protocol = "EBOOT"
    local subtree = tree:add(eboot, tvb())
    local head = len >= 6 and tvb(0, 6):string() or ""
    local query = pinfo.dst_port == EBOOT_PORT
    local kind = query and "query" or "answer"
    subtree:add(f.kind, kind):set_generated()

    if query and head == "EBOOTQ" then
        local version = tvb(6):string()
        subtree:add(f.version, tvb(6, len - 6))
        subtree:append_text(", query, client ERTS " .. version)
        pinfo.cols.info = "EBOOTQ " .. version
    elseif not query and head == "EBOOTR" and len >= 9 then
        local priority = tvb(6, 1):uint()
        local port = tvb(7, 2):uint()
        local version = len > 9 and tvb(9):string() or ""
        subtree:add(f.priority, tvb(6, 1))
        subtree:add(f.port, tvb(7, 2))
        if len > 9 then subtree:add(f.version, tvb(9, len - 9)) end
        subtree:append_text(", answer, TCP port " .. port .. ", server ERTS " .. version)
        pinfo.cols.info = "EBOOTR priority " .. priority .. ", TCP port " .. port .. ", ERTS " .. version
        learn_server(tostring(pinfo.src), port)
    else
        if len > 0 then subtree:add(f.garbage, tvb()) end
        subtree:add_proto_expert_info(ex_unknown)
        pinfo.cols.info = (query and "Unrecognised query" or "Unrecognised answer") ..
            " (" .. len .. " bytes)"
    end
    return len
end

eboot.dissector = dissect_discovery

---------------------------------------------------------------------------------------------
-- Boot sessions ({packet,4} over TCP).

local function element(node, i)
    return node and node.t == "tuple" and node.elems[i] or nil
end

local function string_of(node)
    if node and node.t == "list" then return list_string(node.elems) end
    if node and node.t == "binary" and node.data then return node.data end
    return nil
end

-- Adds one frame (its length prefix at offset) to the tree; returns its Info text.
local function dissect_frame(tvb, offset, size, request, tree)
    local subtree = tree:add(eboot, tvb(offset, 4 + size))
    local kind = request and "request" or "reply"
    subtree:add(f.kind, kind):set_generated()
    subtree:add(f.length, tvb(offset, 4))
    local payload = size > 0 and tvb(offset + 4, size) or tvb(offset, 0)
    local term, err = decode(size > 0 and payload:raw() or "")
    if not term then
        subtree:add_proto_expert_info(ex_malformed, "Malformed external term: " .. err)
        subtree:append_text(", " .. kind .. ", malformed")
        return (request and "Request" or "Reply") .. " (malformed, " .. size .. " bytes)"
    end
    local summary = term_text(term)
    subtree:add(f.term, payload, summary)
    subtree:append_text(", " .. kind .. ": " .. summary)

    if request then
        -- {Command, Arg}, or the bare atom get_cwd.
        local command = term.t == "atom" and term or element(term, 1)
        local name = command and command.t == "atom" and command.v or "?"
        subtree:add(f.command, payload, name)
        local file = string_of(element(term, 2))
        if file then subtree:add(f.file, payload, file) end
        return "Request " .. name .. (file and (" " .. file) or "")
    end

    -- {Tag, {ok, _}}, {Tag, {error, Reason}}, {Tag, ok | error}, or {error, Reason}.
    local tag = element(term, 1)
    local name = tag and tag.t == "atom" and tag.v or "?"
    local status = element(term, 2)
    local result, reason
    if name == "error" then
        result, reason = "error", status
    elseif status and status.t == "atom" and (status.v == "ok" or status.v == "error") then
        result = status.v
    else
        local first = element(status, 1)
        if first and first.t == "atom" and (first.v == "ok" or first.v == "error") then
            result = first.v
            if result == "error" then reason = element(status, 2) end
        end
    end
    if result then subtree:add(f.result, payload, result) end
    local info = "Reply " .. name .. (result and (" " .. result) or "")
    if reason then
        local r = term_text(reason)
        subtree:add(f.reason, payload, r)
        info = info .. " " .. r
    elseif result == "ok" then
        local value = element(status, 2)
        if value and value.t == "binary" then info = info .. " (" .. value.len .. " bytes)" end
    end
    return info
end

local function dissect_session(tvb, pinfo, tree)
    local request
    if servers[tostring(pinfo.dst) .. ":" .. pinfo.dst_port] then
        request = true
    elseif servers[tostring(pinfo.src) .. ":" .. pinfo.src_port] then
        request = false
    else
        -- The port was announced by some other server: not this connection.
        return 0
    end

    local len = tvb:len()
    local offset = 0
    local infos = {}
    while offset < len do
        if len - offset < 4 then
            pinfo.desegment_offset = offset
            pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
            break
        end
        local size = tvb(offset, 4):uint()
        if len - offset < 4 + size then
            pinfo.desegment_offset = offset
            pinfo.desegment_len = 4 + size - (len - offset)
            break
        end
        infos[#infos + 1] = dissect_frame(tvb, offset, size, request, tree)
        offset = offset + 4 + size
    end
    if #infos > 0 then
        pinfo.cols.protocol = "EBOOT"
        pinfo.cols.info = table.concat(infos, "; ")
    end
    return len
end

eboot_tcp.dissector = dissect_session

DissectorTable.get("udp.port"):add(EBOOT_PORT, eboot)

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
-- over. The TCP port is learned from each EBOOTR as it is dissected (with the answer's source
-- address), so read a capture in two passes (tshark -2) to see connections that come before
-- their answer. For a capture that starts after discovery, give the server's port in the
-- preference eboot.ports (Protocols > EBOOT in Wireshark's preferences; tshark -o
-- eboot.ports:45000): those ports are boot servers on any address.
--
-- Usage:
--   tshark -X lua_script:eboot.lua -r boot.pcap
--   tshark -X lua_script:eboot.lua -2 -r boot.pcap -T fields -e frame.number -e eboot.kind
--   tshark -X lua_script:eboot.lua -o eboot.ports:45000 -r late-start.pcap
--   or copy the file to ~/.local/lib/wireshark/plugins/
--
-- Fields: eboot.kind (query, answer, request, reply), eboot.version, eboot.priority,
-- eboot.port, eboot.length, eboot.command, eboot.file, eboot.result (ok, error),
-- eboot.reason, eboot.term (the message as an Erlang term, binaries over 64 bytes as
-- <<N bytes>>; a datagram, or a frame that holds no term, as an Erlang binary).
--
-- Written for Lua 5.1 to 5.4 (Wireshark 3.x to 4.4+): no bit library, no utf8 library, no
-- string.unpack.
--
-- As root, Wireshark runs scripts given with -X lua_script only when the global init.lua
-- sets run_user_scripts_when_superuser = true, as current releases do (Debian 12's 4.0
-- included); old distribution packages (1.x) set it false and disable dofile. Where Lua is
-- off, tshark rejects the eboot.* fields as unknown.

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
local ex_trailing = ProtoExpert.new("eboot.trailing", "Bytes after the term",
    expert.group.PROTOCOL, expert.severity.WARN)
eboot.experts = { ex_malformed, ex_unknown, ex_trailing }

eboot.prefs.ports = Pref.range("Boot server TCP ports", "",
    "TCP ports taken as boot servers' on any address, besides those EBOOTR answers announce " ..
    "(for captures that start after discovery)", 65535)

-- Boot servers learned from EBOOTR answers: "address:port" -> true.
local servers = {}
-- Ports of the eboot.ports preference: port -> true.
local any_address = {}
local tcp_table = DissectorTable.get("tcp.port")
local registered_ports = {}

local function register(port)
    if not registered_ports[port] then
        registered_ports[port] = true
        tcp_table:add(port, eboot_tcp)
    end
end

local function learn_server(address, port)
    servers[address .. ":" .. port] = true
    register(port)
end

-- "45000,46000-46010" as a set of ports.
local function ports_of(range)
    local set = {}
    for item in tostring(range or ""):gmatch("[^,%s]+") do
        local first, last = item:match("^(%d+)%-(%d+)$")
        first, last = tonumber(first or item), tonumber(last or item)
        if first and last then
            for port = first, math.min(last, 65535) do set[port] = true end
        end
    end
    return set
end

local function apply_ports()
    any_address = ports_of(eboot.prefs.ports)
    for port in pairs(any_address) do register(port) end
end

eboot.prefs_changed = apply_ports

local function is_server(address, port)
    return any_address[port] or servers[tostring(address) .. ":" .. port]
end

function eboot.init()
    -- A new file: forget the servers of the last one (the port registrations stay; the
    -- address check keeps them from claiming other traffic).
    servers = {}
    apply_ports()
end

---------------------------------------------------------------------------------------------
-- External term format, read into small tables for display.
-- A node is { t = "int"|"float"|"big"|"atom"|"tuple"|"list"|"string"|"binary"|"bits"|
--             "map"|"improper"|"other", ... }.

local RESERVED = {}
for w in ("after and andalso band begin bnot bor bsl bsr bxor case catch cond div else end " ..
    "fun if let maybe not of or orelse receive rem try when xor"):gmatch("%S+") do
    RESERVED[w] = true
end

-- UTF-8 text quoted as erlboot prints it: backslash, quote, newline and tab escaped, other
-- control characters (C0, DEL, C1) as \x{HEX}.
local function quote_chars(s, quote)
    s = s:gsub("[%z\1-\31\127\\" .. quote .. "]", function(c)
        if c == "\\" then return "\\\\" end
        if c == "\n" then return "\\n" end
        if c == "\t" then return "\\t" end
        if c == quote then return "\\" .. c end
        return string.format("\\x{%X}", c:byte())
    end)
    return (s:gsub("\194([\128-\159])", function(c)
        return string.format("\\x{%X}", c:byte())
    end))
end

local function atom_text(a)
    if a:match("^[a-z][%w_@]*$") and not RESERVED[a] then return a end
    return "'" .. quote_chars(a, "'") .. "'"
end

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

-- A non-negative integer given as big-endian bytes, in decimal: long division by 10, exact
-- at any size (Lua 5.1/5.2 numbers are doubles).
local function decimal(be)
    local digits = { be:byte(1, -1) }
    local out = {}
    while true do
        local rest, nonzero = 0, false
        for i = 1, #digits do
            local v = rest * 256 + digits[i]
            digits[i] = math.floor(v / 10)
            rest = v % 10
            if digits[i] ~= 0 then nonzero = true end
        end
        out[#out + 1] = tostring(rest)
        if not nonzero then break end
    end
    return string.reverse(table.concat(out))
end

-- An integer as erlboot prints it: in decimal when it fits a signed 64-bit integer, else as
-- 16#HEX. `le` is the magnitude, little-endian.
local function big_text(negative, le)
    le = le:gsub("%z+$", "")
    local n = #le
    local top = n > 0 and le:byte(n) or 0
    local fits = n < 8 or (n == 8 and (top < 0x80 or
        (negative and top == 0x80 and not le:sub(1, 7):find("[^%z]"))))
    local sign = (negative and n > 0) and "-" or ""
    if fits then
        return sign .. decimal(le:reverse())
    end
    local hex = {}
    for i = n, 1, -1 do hex[#hex + 1] = string.format("%02X", le:byte(i)) end
    return sign .. "16#" .. table.concat(hex)
end

local function number_text(v)
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then
        return string.format("%d", v)
    end
    return tostring(v)
end

local Reader = {}
Reader.__index = Reader

-- A zlib stream inflated by Wireshark (nil where it cannot: outside Wireshark, or a bad
-- stream).
local function inflate(s)
    if not ByteArray then return nil end
    local range
    if not pcall(function() range = ByteArray.new(s, true):tvb("compressed term"):range() end) then
        return nil
    end
    -- uncompress_zlib from Wireshark 4.2 on, uncompress before (an unknown method raises).
    for _, method in ipairs({ "uncompress_zlib", "uncompress" }) do
        local ok, out = pcall(function()
            local tvb = range[method](range, "inflated term")
            return tvb and tvb:range():bytes():raw()
        end)
        if ok and out then return out end
    end
    return nil
end

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

-- An atom where only an atom may be (a pid's node, a fun's module), as Erlang text.
function Reader:atom(depth)
    local node = self:term(depth + 1)
    if node.t ~= "atom" then error("atom expected", 0) end
    return atom_text(node.v)
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
    elseif tag == 100 or tag == 115 then -- ATOM_EXT, SMALL_ATOM_EXT: Latin-1
        local n = tag == 100 and self:u16() or self:u8()
        return { t = "atom", v = (self:bytes(n):gsub("[\128-\255]", function(c)
            return utf8_char(c:byte())
        end)) }
    elseif tag == 118 or tag == 119 then -- ATOM_UTF8_EXT, SMALL_ATOM_UTF8_EXT
        local n = tag == 118 and self:u16() or self:u8()
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
        if n <= BINARY_SHOWN then
            return { t = "bits", len = n, bits = bits, data = self:bytes(n) }
        end
        self:skip(n)
        return { t = "bits", len = n, bits = bits }
    elseif tag == 110 or tag == 111 then -- SMALL_BIG_EXT, LARGE_BIG_EXT
        local n = tag == 110 and self:u8() or self:u32()
        local negative = self:u8() ~= 0
        return { t = "big", text = big_text(negative, self:bytes(n)) }
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
        local node = self:atom(depth)
        local id, serial = self:u32(), self:u32()
        local creation = tag == 88 and self:u32() or self:u8()
        return { t = "other", text = string.format("#Pid<%s.%d.%d.%d>", node, creation, id, serial) }
    elseif tag == 89 or tag == 102 or tag == 120 then -- NEW_PORT_EXT, PORT_EXT, V4_PORT_EXT
        local node = self:atom(depth)
        local id
        if tag == 120 then
            id = decimal(self:bytes(8))
        else
            id = string.format("%d", self:u32())
        end
        local creation = tag == 102 and self:u8() or self:u32()
        return { t = "other", text = string.format("#Port<%s.%d.%s>", node, creation, id) }
    elseif tag == 90 or tag == 114 then -- NEWER_REFERENCE_EXT, NEW_REFERENCE_EXT
        local n = self:u16()
        local node = self:atom(depth)
        local parts = { "#Ref<" .. node, tag == 90 and self:u32() or self:u8() }
        for _ = 1, n do parts[#parts + 1] = self:u32() end
        return { t = "other", text = table.concat(parts, ".") .. ">" }
    elseif tag == 113 then -- EXPORT_EXT
        local m, fn = self:atom(depth), self:atom(depth)
        local arity = self:term(depth + 1)
        return { t = "other", text = "fun " .. m .. ":" .. fn .. "/" .. number_text(arity.v or 0) }
    elseif tag == 80 then -- compressed: the zlib stream takes the rest
        local n = self:u32()
        local stream = self.s:sub(self.pos)
        self:skip(#self.s - self.pos + 1)
        local inflated = inflate(stream)
        if inflated and #inflated == n then
            local inner = reader(inflated)
            local ok, term = pcall(function() return inner:term(depth) end)
            if ok and inner.pos == #inflated + 1 then return term end
        end
        return { t = "other", text = "<<compressed term, " .. n .. " bytes>>" }
    end
    error(string.format("unknown term tag %d", tag), 0)
end

-- Decodes a frame: 131 and one term. Returns the term and how many bytes follow it (OTP's
-- binary_to_term ignores them too), or nil and why it is not a term.
local function decode(s)
    local r = reader(s)
    local ok, result = pcall(function()
        if r:u8() ~= 131 then error("no version byte 131", 0) end
        return r:term(0)
    end)
    if ok then return result, #s - r.pos + 1 end
    return nil, result
end

---------------------------------------------------------------------------------------------
-- Terms as Erlang text.

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

-- The code points of a UTF-8 string, or nil if it is not valid UTF-8 (overlong forms,
-- surrogates and values past U+10FFFF are not).
local function utf8_codepoints(s)
    local cps, i, n = {}, 1, #s
    while i <= n do
        local c = s:byte(i)
        local len, cp, min
        if c < 0x80 then
            len, cp, min = 1, c, 0
        elseif c >= 0xC2 and c < 0xE0 then
            len, cp, min = 2, c - 0xC0, 0x80
        elseif c >= 0xE0 and c < 0xF0 then
            len, cp, min = 3, c - 0xE0, 0x800
        elseif c >= 0xF0 and c < 0xF5 then
            len, cp, min = 4, c - 0xF0, 0x10000
        else
            return nil
        end
        if i + len - 1 > n then return nil end
        for j = i + 1, i + len - 1 do
            local cc = s:byte(j)
            if cc < 0x80 or cc >= 0xC0 then return nil end
            cp = cp * 64 + (cc - 0x80)
        end
        if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then return nil end
        cps[#cps + 1] = cp
        i = i + len
    end
    return cps
end

local function binary_text(b)
    if b.data == nil then return "<<" .. b.len .. " bytes>>" end
    if b.len == 0 then return "<<>>" end
    local s = b.data
    -- Shown as a string when it is valid UTF-8 of printable characters.
    local cps = utf8_codepoints(s)
    local shown = cps ~= nil
    for _, cp in ipairs(cps or {}) do
        if not printable(cp) then shown = false end
    end
    if shown then
        return '<<"' .. quote_chars(s, '"') .. '">>'
    end
    local bytes = {}
    for i = 1, #s do bytes[i] = tostring(s:byte(i)) end
    return "<<" .. table.concat(bytes, ",") .. ">>"
end

-- <<B1,...,Last:Bits>>, the last byte's value taken from its top Bits bits.
local function bits_text(b)
    if not b.data then return "<<" .. b.len .. " bytes>>" end
    if b.len == 0 then return "<<>>" end
    local parts = {}
    for i = 1, b.len - 1 do parts[i] = tostring(b.data:byte(i)) end
    local bits = math.max(1, math.min(b.bits, 8))
    parts[b.len] = math.floor(b.data:byte(b.len) / 2 ^ (8 - bits)) .. ":" .. bits
    return "<<" .. table.concat(parts, ",") .. ">>"
end

-- The shortest decimal that reads back as the same double, with ".0" on a whole number.
local function float_text(v)
    local s
    for digits = 15, 17 do
        s = string.format("%." .. digits .. "g", v)
        if tonumber(s) == v then break end
    end
    if not s:find("[%.eEna]") then s = s .. ".0" end
    return s
end

local function text(node, out)
    local t = node.t
    if t == "int" then
        out[#out + 1] = number_text(node.v)
    elseif t == "float" then
        out[#out + 1] = node.text or float_text(node.v)
    elseif t == "big" or t == "other" then
        out[#out + 1] = node.text
    elseif t == "atom" then
        out[#out + 1] = atom_text(node.v)
    elseif t == "binary" then
        out[#out + 1] = binary_text(node)
    elseif t == "bits" then
        out[#out + 1] = bits_text(node)
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

-- Raw bytes as an Erlang binary: printable ASCII runs quoted, other bytes as numbers
-- (<<"EBOOTR",0,181,39,"13.1.5">>); over BINARY_SHOWN bytes, <<N bytes>>.
local function bytes_text(s)
    if #s > BINARY_SHOWN then return "<<" .. #s .. " bytes>>" end
    local parts, run = {}, {}
    local function flush()
        if #run > 0 then
            parts[#parts + 1] = '"' .. table.concat(run) .. '"'
            run = {}
        end
    end
    for i = 1, #s do
        local b = s:byte(i)
        if b >= 0x20 and b < 0x7F then
            run[#run + 1] = (b == 34 or b == 92) and ("\\" .. string.char(b)) or string.char(b)
        else
            flush()
            parts[#parts + 1] = tostring(b)
        end
    end
    flush()
    return "<<" .. table.concat(parts, ",") .. ">>"
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
    local payload = len > 0 and tvb():raw() or ""

    if query and head == "EBOOTQ" then
        local version = tvb(6):string()
        subtree:add(f.version, tvb(6, len - 6))
        subtree:add(f.term, tvb(), bytes_text(payload))
        subtree:append_text(", query, client ERTS " .. version)
        pinfo.cols.info = "EBOOTQ " .. version
    elseif not query and head == "EBOOTR" and len >= 9 then
        local priority = tvb(6, 1):uint()
        local port = tvb(7, 2):uint()
        local version = len > 9 and tvb(9):string() or ""
        subtree:add(f.priority, tvb(6, 1))
        subtree:add(f.port, tvb(7, 2))
        if len > 9 then subtree:add(f.version, tvb(9, len - 9)) end
        -- Field by field: the port's bytes may happen to be printable.
        local rest = bytes_text(payload:sub(10)):sub(3, -3)
        subtree:add(f.term, tvb(), string.format('<<"EBOOTR",%d,%d,%d%s%s>>', priority,
            math.floor(port / 256), port % 256, rest == "" and "" or ",", rest))
        local erts = version == "" and "" or (", ERTS " .. version)
        subtree:append_text(", answer, TCP port " .. port .. erts)
        pinfo.cols.info = "EBOOTR priority " .. priority .. ", TCP port " .. port .. erts
        learn_server(tostring(pinfo.src), port)
    else
        if len > 0 then subtree:add(f.garbage, tvb()) end
        subtree:add(f.term, tvb(), bytes_text(payload))
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
    local raw = size > 0 and payload:raw() or ""
    local term, err = decode(raw)
    if term and err > 0 then
        subtree:add_proto_expert_info(ex_trailing, err .. " bytes after the term")
    end
    if not term then
        subtree:add(f.term, payload, bytes_text(raw))
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
        if not (command and command.t == "atom") then
            return "Request " .. summary
        end
        subtree:add(f.command, payload, command.v)
        local file = string_of(element(term, 2))
        if file then subtree:add(f.file, payload, file) end
        return "Request " .. command.v .. (file and (" " .. file) or "")
    end

    -- {Tag, {ok, _}}, {Tag, {error, Reason}}, {Tag, ok | error}, or {error, Reason}.
    local tag = element(term, 1)
    if not (tag and tag.t == "atom") then
        return "Reply " .. summary
    end
    local name = tag.v
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
    if is_server(pinfo.dst, pinfo.dst_port) then
        request = true
    elseif is_server(pinfo.src, pinfo.src_port) then
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

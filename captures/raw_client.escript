#!/usr/bin/env escript
%% -*- erlang -*-
%% A boot client that sends frames an erl -loader inet node never sends, to see what OTP's
%% erl_boot_server does with them (the otp25-malformed scenario of record.sh).
%%
%% It finds the server the way the inet loader does (EBOOTQ<erts version> to UDP 4368 of
%% HOST, the TCP port from the EBOOTR), then opens one TCP connection per case: sends the
%% case's bytes (a 4-byte length and the payload, written by hand so that bad framing can be
%% sent too), prints what came back (each {packet,4} frame decoded with binary_to_term, or
%% the connection closing) and closes.
%%
%% Usage: escript captures/raw_client.escript HOST
-mode(compile).

main([Host]) ->
    {ok, Ip} = inet:parse_ipv4_address(Host),
    Port = discover(Ip),
    io:format("server ~s port ~b~n", [Host, Port]),
    [run(Ip, Port, Name, Bytes) || {Name, Bytes} <- cases()],
    ok;
main(_) ->
    io:format(standard_error, "usage: raw_client.escript HOST~n", []),
    halt(2).

frame(Payload) -> <<(byte_size(Payload)):32, Payload/binary>>.

%% {Name, Bytes on the wire}: each on its own connection.
cases() ->
    [{"empty frame", frame(<<>>)},
     {"not ETF", frame(<<"hello">>)},
     {"version byte only", frame(<<131>>)},
     {"truncated ETF", frame(binary:part(term_to_binary({get, "/usr/lib/erlang/releases/start_erl.data"}), 0, 10))},
     {"wrong ETF version", frame(<<130, 100, 0, 7, "get_cwd">>)},
     {"unknown atom", frame(term_to_binary(stop))},
     {"unknown tuple", frame(term_to_binary({put, "/tmp/x", <<"data">>}))},
     {"get with 3 elements", frame(term_to_binary({get, "/usr/lib/erlang/releases/start_erl.data", extra}))},
     {"get_cwd as a string", frame(term_to_binary("get_cwd"))},
     {"get, compressed ETF", frame(term_to_binary({get, "/usr/lib/erlang/releases/" ++ lists:duplicate(100, $a)}, [compressed]))},
     {"get of a binary name", frame(term_to_binary({get, <<"/usr/lib/erlang/releases/start_erl.data">>}))},
     {"list_dir of an integer", frame(term_to_binary({list_dir, 42}))},
     {"get of an integer", frame(term_to_binary({get, 42}))},
     {"two requests in one segment",
      <<(frame(term_to_binary(get_cwd)))/binary, (frame(term_to_binary(get_cwd)))/binary>>},
     {"length prefix longer than the data", <<0, 0, 0, 100, 131, 100, 0>>}].

discover(Ip) ->
    {ok, U} = gen_udp:open(0, [binary, {active, false}]),
    ok = gen_udp:send(U, Ip, 4368, ["EBOOTQ", erlang:system_info(version)]),
    {ok, {_, 4368, <<"EBOOTR", _Prio, Port:16, _/binary>>}} = gen_udp:recv(U, 0, 5000),
    ok = gen_udp:close(U),
    Port.

run(Ip, Port, Name, Bytes) ->
    case gen_tcp:connect(Ip, Port, [binary, {packet, raw}, {active, false}], 5000) of
        {ok, S} ->
            ok = gen_tcp:send(S, Bytes),
            io:format("~s: ~w~n  => ~s~n", [Name, Bytes, replies(S, <<>>)]),
            ok = gen_tcp:close(S);
        {error, Reason} ->
            io:format("~s: ~w~n  => connect failed: ~w~n", [Name, Bytes, Reason])
    end.

%% Every reply until the server has been quiet for 1 s or closed the connection.
replies(S, Buf) ->
    case gen_tcp:recv(S, 0, 1000) of
        {ok, More} -> replies(S, <<Buf/binary, More/binary>>);
        {error, timeout} -> decode(Buf, "(no more)");
        {error, closed} -> decode(Buf, "(closed by the server)")
    end.

decode(<<Len:32, F:Len/binary, Rest/binary>>, End) ->
    io_lib:format("~0p ", [binary_to_term(F)]) ++ decode(Rest, End);
decode(<<>>, End) -> End;
decode(Partial, End) -> io_lib:format("partial ~w ", [Partial]) ++ End.

#!/usr/bin/env escript
%% -*- erlang -*-
%% Summarise a boot-protocol pcap as TOML key = value lines (used by record.sh for
%% manifest.toml). Boot connections are the TCP connections to a port an EBOOTR announced;
%% the counts are over all of them. It uses tshark's own TCP reassembly ("follow,tcp,raw") and Erlang's
%% binary_to_term, so it is independent of tests/support/capture.rs and can cross-check it.
%%
%% Usage: escript captures/summarise.escript FILE.pcap
-mode(compile).

main([Pcap]) ->
    Udp = udp(Pcap),
    Qs = [D || {_, _, _, _, 4368, <<"EBOOTQ", _/binary>>} = D <- Udp],
    Rs = [D || {_, _, 4368, _, _, <<"EBOOTR", _/binary>>} = D <- Udp],
    Qs =/= [] orelse fail("no EBOOTQ datagram in ~s", [Pcap]),
    {_, _, _, _, _, FirstQ} = hd(Qs),
    %% Boot connections: those to a port some EBOOTR announced (not epmd, not distribution).
    Ports = lists:usort([P || {_, _, _, _, _, <<"EBOOTR", _, P:16, _/binary>>} <- Rs]),
    AllSyns = syns(Pcap),
    Syns = [S || {_, _, DP} = S <- AllSyns, lists:member(DP, Ports)],
    Streams = [follow(Pcap, Id) || {_, Id, _} <- Syns],
    Split = [{frames(C), frames(S)} || {C, S} <- Streams],
    Reqs = lists:append([F || {{F, _}, _} <- Split]),
    Reps = lists:append([F || {_, {F, _}} <- Split]),
    Partial = length([x || {{_, P1}, {_, P2}} <- Split, P <- [P1, P2], P > 0]),
    Unanswered = lists:sum([max(0, length(Q) - length(A)) || {{Q, _}, {A, _}} <- Split]),
    Terms = [term(F) || F <- Reqs],
    RepTerms = [term(F) || F <- Reps],
    Cmds = [cmd(T) || T <- Terms],
    Count = fun(C) -> length([x || X <- Cmds, X =:= C]) end,
    Known = [get, list_dir, read_file_info, read_link_info, get_cwd],
    Other = length(Cmds) - lists:sum([Count(C) || C <- Known]),
    Errors = length([x || R <- RepTerms, is_error(R)]),
    Line = fun(K, Fmt, A) -> io:format("~s = " ++ Fmt ++ "~n", [K | A]) end,
    Line("packets", "~b", [packets(Pcap)]),
    Line("udp_requests", "~b", [length(Qs)]),
    Line("udp_replies", "~b", [length(Rs)]),
    Line("udp_request_payload", "\"~s\"", [FirstQ]),
    case Rs of
        [{TR, _, _, _, _, <<"EBOOTR", Prio, Port:16, RVsn/binary>>} | _] ->
            Line("udp_reply_priority", "~b", [Prio]),
            Line("udp_reply_version", "\"~s\"", [RVsn]),
            Line("tcp_port", "~b", [Port]),
            Line("tcp_ports", "[~s]", [lists:join(", ", [integer_to_list(P) || P <- Ports])]),
            case Syns of
                [{TSyn, _, SynDport} | _] ->
                    Line("tcp_syn_port", "~b", [SynDport]),
                    Line("ebootr_to_syn_ms", "~.1f", [(TSyn - TR) * 1000]);
                [] ->
                    ok
            end;
        [] ->
            ok
    end,
    Line("tcp_streams", "~b", [length(Syns)]),
    Line("other_tcp_streams", "~b", [length(AllSyns) - length(Syns)]),
    case Reqs of
        [First | _] -> Line("atom_encoding", "\"~s\"", [atom_encoding(First)]);
        [] -> ok
    end,
    Line("requests", "~b", [length(Reqs)]),
    Line("replies", "~b", [length(Reps)]),
    Line("error_replies", "~b", [Errors]),
    Line("unanswered_requests", "~b", [Unanswered]),
    Line("undecodable_frames", "~b", [length([x || undecodable <- Terms ++ RepTerms])]),
    Line("partial_frames", "~b", [Partial]),
    Line("bytes_to_server", "~b", [lists:sum([byte_size(C) || {C, _} <- Streams])]),
    Line("bytes_to_client", "~b", [lists:sum([byte_size(S) || {_, S} <- Streams])]),
    io:format("commands = { ~s, other = ~b }~n",
              [lists:join(", ", [io_lib:format("~s = ~b", [C, Count(C)]) || C <- Known]), Other]);
main(_) ->
    fail("usage: summarise.escript FILE.pcap", []).

fail(Fmt, Args) ->
    io:format(standard_error, "summarise: " ++ Fmt ++ "~n", Args),
    halt(1).

tshark(Args) ->
    os:cmd("tshark " ++ Args ++ " 2>/dev/null").

q(S) -> "'" ++ S ++ "'".

packets(Pcap) ->
    length(string:lexemes(tshark("-r " ++ q(Pcap) ++ " -T fields -e frame.number"), "\n")).

%% [{Time, SrcIp, SrcPort, DstIp, DstPort, Payload}]
udp(Pcap) ->
    Out = tshark("-r " ++ q(Pcap) ++ " -Y udp -T fields -e frame.time_relative -e ip.src"
                 " -e udp.srcport -e ip.dst -e udp.dstport -e udp.payload"),
    [begin
         [T, S, SP, D, DP | P] = string:split(L, "\t", all),
         {list_to_float(T), S, list_to_integer(SP), D, list_to_integer(DP),
          binary:decode_hex(list_to_binary(lists:append(P)))}
     end || L <- string:lexemes(Out, "\n")].

%% [{Time, StreamId, DstPort}] of the SYNs (not SYN-ACKs), in capture order.
syns(Pcap) ->
    Out = tshark("-r " ++ q(Pcap) ++ " -Y 'tcp.flags.syn==1 && tcp.flags.ack==0'"
                 " -T fields -e frame.time_relative -e tcp.stream -e tcp.dstport"),
    [begin
         [T, Id, DP] = string:split(L, "\t", all),
         {list_to_float(T), list_to_integer(Id), list_to_integer(DP)}
     end || L <- string:lexemes(Out, "\n")].

%% {BytesFromNode0, BytesFromNode1} of one TCP stream; node 0 sent the first packet (the SYN).
follow(Pcap, Id) ->
    Out = tshark("-r " ++ q(Pcap) ++ " -q -z follow,tcp,raw," ++ integer_to_list(Id)),
    Lines = string:split(Out, "\n", all),
    {_, Data} = lists:splitwith(fun(L) -> not lists:prefix("Node 1:", L) end, Lines),
    Body = lists:takewhile(fun(L) -> not lists:prefix("====", L) end, tl(Data)),
    C = << <<(binary:decode_hex(list_to_binary(L)))/binary>> || [H | _] = L <- Body, H =/= $\t >>,
    S = << <<(binary:decode_hex(list_to_binary(L)))/binary>> || [$\t | L] <- Body >>,
    {C, S}.

%% {Frames, BytesOfATrailingPartialFrame}
frames(<<Len:32, F:Len/binary, Rest/binary>>) ->
    {Fs, P} = frames(Rest),
    {[F | Fs], P};
frames(Partial) -> {[], byte_size(Partial)}.

term(F) ->
    try binary_to_term(F) catch error:badarg -> undecodable end.

cmd(undecodable) -> other;
cmd(A) when is_atom(A) -> A;
cmd(T) when is_tuple(T), tuple_size(T) >= 1, is_atom(element(1, T)) -> element(1, T);
cmd(_) -> other.

is_error({_, {error, _}}) -> true;
is_error({error, _}) -> true;
is_error(_) -> false.

atom_encoding(<<131, 104, _, 100, _/binary>>) -> "ATOM_EXT";
atom_encoding(<<131, 104, _, 119, _/binary>>) -> "SMALL_ATOM_UTF8_EXT";
atom_encoding(<<131, 100, _/binary>>) -> "ATOM_EXT";
atom_encoding(<<131, 119, _/binary>>) -> "SMALL_ATOM_UTF8_EXT";
atom_encoding(_) -> "unknown".

#!/usr/bin/env escript
%% The real External Term Format, as the running OTP release does it, for erlboot's
%% differential tests. Files hold records <<Len:32, Bytes:Len/binary>>.
%%
%%   roundtrip IN OUT   every record of IN goes through binary_to_term/1 and back through
%%                      term_to_binary/1; OUT gets <<0, Len:32, Bytes>> per record, or
%%                      <<1, Len:32, Why>> when binary_to_term/1 refused it.
%%   generate OUT N SEED  writes term_to_binary/1 of N varied terms, then of fixed edge cases.
%%   info               prints the OTP release and ERTS version.
-mode(compile).

main(["roundtrip", In, Out]) ->
    {ok, Data} = file:read_file(In),
    ok = file:write_file(Out, roundtrip(Data, []));
main(["generate", Out, N, Seed]) ->
    _ = rand:seed(exsss, list_to_integer(Seed)),
    Terms = [term(4) || _ <- lists:seq(1, list_to_integer(N))] ++ edge_cases(),
    ok = file:write_file(Out, [record(term_to_binary(T)) || T <- Terms]);
main(["info"]) ->
    io:format("~s ~s~n", [erlang:system_info(otp_release), erlang:system_info(version)]).

record(Bin) -> <<(byte_size(Bin)):32, Bin/binary>>.

roundtrip(<<Len:32, Bin:Len/binary, Rest/binary>>, Acc) ->
    Out = try binary_to_term(Bin) of
              T -> <<0, (record(term_to_binary(T)))/binary>>
          catch C:R -> <<1, (record(iolist_to_binary(io_lib:format("~p:~p", [C, R]))))/binary>>
          end,
    roundtrip(Rest, [Out | Acc]);
roundtrip(<<>>, Acc) ->
    lists:reverse(Acc).

pick(List) -> lists:nth(rand:uniform(length(List)), List).

char() ->
    case rand:uniform(4) of
        1 -> 31 + rand:uniform(95);
        2 -> 159 + rand:uniform(96);
        3 -> 255 + rand:uniform(16#D7FF - 255);
        4 -> 16#FFFF + rand:uniform(16#10FFFF - 16#FFFF)
    end.

chars(Max) -> [char() || _ <- lists:seq(1, rand:uniform(Max + 1) - 1)].

integer() ->
    case rand:uniform(5) of
        1 -> rand:uniform(256) - 1;
        2 -> rand:uniform(1 bsl 32) - (1 bsl 31);
        3 -> rand:uniform(1 bsl 64) - (1 bsl 63);
        4 -> pick([1, -1]) * rand:uniform(1 bsl (rand:uniform(2200)));
        5 -> pick([-1 bsl 31, (1 bsl 31) - 1, 1 bsl 31, -(1 bsl 31) - 1, 1 bsl 63, -(1 bsl 63)])
    end.

leaf() ->
    case rand:uniform(12) of
        1 -> integer();
        2 -> (rand:uniform() - 0.5) * math:pow(10, rand:uniform(600) - 300);
        3 -> list_to_atom(chars(12));
        4 -> pick([ok, error, get, list_dir, file_info, 'hello world', '', 'Quoted']);
        5 -> chars(30);
        6 -> [rand:uniform(256) - 1 || _ <- lists:seq(1, rand:uniform(40))];
        7 -> rand:bytes(rand:uniform(64) - 1);
        8 -> <<(rand:uniform(1 bsl 20)):(rand:uniform(40))>>;
        9 -> pick([self(), make_ref(), hd(erlang:ports()), list_to_pid("<0.7.3>")]);
        10 -> pick([fun lists:map/2, fun erlang:'++'/2, fun 'Mod€':f/0]);
        11 -> [];
        12 -> unicode:characters_to_binary(chars(10))
    end.

term(0) -> leaf();
term(Depth) ->
    Sub = fun() -> term(Depth - 1) end,
    case rand:uniform(8) of
        1 -> list_to_tuple([Sub() || _ <- lists:seq(1, rand:uniform(5) - 1)]);
        2 -> [Sub() || _ <- lists:seq(1, rand:uniform(5))];
        3 -> [Sub() | leaf()];
        4 -> maps:from_list([{Sub(), Sub()} || _ <- lists:seq(1, rand:uniform(4) - 1)]);
        _ -> leaf()
    end.

edge_cases() ->
    [0, 255, 256, -1, 2147483647, 2147483648, -2147483648, -2147483649,
     5000000000, 1 bsl 2040, 1 bsl 2047, -(1 bsl 2048), 1 bsl 20000,
     0.0, -0.0, 1.0e300, -2.5e-300, 5.0e-324,
     'get', list_to_atom(lists:duplicate(255, $a)), list_to_atom(lists:duplicate(255, 16#20AC)),
     list_to_atom([255]), list_to_atom([256]), list_to_atom(lists:duplicate(85, 16#20AC)),
     list_to_atom(lists:duplicate(86, 16#20AC)),
     "", "/tmp/é", "/tmp/€", lists:duplicate(65535, $a), lists:duplicate(65536, $a),
     lists:duplicate(70000, 300), [256], [1, 2 | 3], [a | <<>>],
     <<>>, <<1:1>>, <<255, 1:7>>, binary:copy(<<7>>, 100000),
     list_to_tuple(lists:seq(1, 255)), list_to_tuple(lists:seq(1, 256)), {},
     #{}, #{a => 1, 1 => a, "s" => <<"b">>},
     maps:from_list([{K, K * K} || K <- lists:seq(1, 33)]),
     maps:from_list([{integer_to_list(K), K} || K <- lists:seq(1, 100)]),
     {get, "/usr/lib/erlang/bin/start.boot"}, get_cwd, {get_cwd, "c:"},
     {read_file_info, {ok, {file_info, 3, regular, read_write, {{2024,1,2},{3,4,5}},
                            {{2024,1,2},{3,4,5}}, {{2024,1,2},{3,4,5}}, 33188, 1, 65024, 0,
                            10027030, 0, 0}}}].

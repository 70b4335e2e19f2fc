#!/usr/bin/env escript
%% OTP's boot server replies, computed the way erl_boot_server:handle_command/3 computes them
%% (the same erl_prim_loader:prim_* calls, the same term_to_binary/1), without sockets.
%% Files hold records <<Len:32, Bytes:Len/binary>>.
%%
%%   replies CWD IN OUT   IN holds request payloads; OUT gets, per request, <<0, Reply/binary>>
%%                        as a record, or <<1, Why/binary>> where OTP's connection would crash.
-mode(compile).

main(["replies", Cwd, In, Out]) ->
    ok = file:set_cwd(Cwd),
    {ok, Data} = file:read_file(In),
    PS = erl_prim_loader:prim_init(),
    ok = file:write_file(Out, replies(Data, PS, [])).

record(Bin) -> <<(byte_size(Bin)):32, Bin/binary>>.

replies(<<Len:32, Msg:Len/binary, Rest/binary>>, PS, Acc) ->
    {Out, PS2} = try handle_command(PS, Msg) of
                     {Reply, PS1} -> {<<0, (term_to_binary(Reply))/binary>>, PS1}
                 catch C:R ->
                     {<<1, (iolist_to_binary(io_lib:format("~p:~p", [C, R])))/binary>>, PS}
                 end,
    replies(Rest, PS2, [record(Out) | Acc]);
replies(<<>>, _PS, Acc) ->
    lists:reverse(Acc).

%% erl_boot_server.erl (kernel-8.5.3) handle_command/3, returning what it would send.
handle_command(PS, Msg) ->
    case catch binary_to_term(Msg) of
        {get, File} -> tagged(get, erl_prim_loader:prim_get_file(PS, File));
        {list_dir, Dir} -> tagged(list_dir, erl_prim_loader:prim_list_dir(PS, Dir));
        {read_file_info, File} -> tagged(read_file_info, erl_prim_loader:prim_read_file_info(PS, File, true));
        {read_link_info, File} -> tagged(read_link_info, erl_prim_loader:prim_read_file_info(PS, File, false));
        get_cwd -> tagged(get_cwd, erl_prim_loader:prim_get_cwd(PS, []));
        {get_cwd, Drive} -> tagged(get_cwd, erl_prim_loader:prim_get_cwd(PS, [Drive]));
        {'EXIT', Reason} -> {{error, Reason}, PS};
        _Other -> {{error, unknown_command}, PS}
    end.

tagged(Cmd, {Res, PS}) -> {{Cmd, Res}, PS}.

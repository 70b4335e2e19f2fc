#!/usr/bin/env escript
%% What a real OTP boot server answers for names inside `.ez` archives, for erlboot's
%% differential tests. It calls the functions erl_boot_server calls (erl_prim_loader:prim_*).
%%
%%   make DIR           writes the fixture trees and archives under DIR with zip:create/3.
%%   query IN OUT       IN holds records <<Len:32, term_to_binary({Op, Path, ArchiveOrFalse})>>;
%%                      OUT gets one record per query: term_to_binary({Split, First, Again,
%%                      ArchiveInfo}) where Split is name_split(undefined, Path), First the
%%                      answer in a fresh process (OTP opens the archive), Again the answer to
%%                      the same request repeated (the archive cache), ArchiveInfo
%%                      prim_file:read_file_info(Archive) or none. A crash is {crash, Class}.
%%
%% OTP 27 renamed prim_get_file/2 to prim_read_file/2; either is used. Without the source of
%% erl_prim_loader (a runtime-only install), Split is `unknown`.
-mode(compile).

main(["make", Dir]) ->
    ok = make(Dir);
main(["query", In, Out]) ->
    {ok, Data} = file:read_file(In),
    Mod = load_split(),
    ok = file:write_file(Out, [record(term_to_binary(query(Mod, binary_to_term(Q))))
                               || Q <- records(Data)]).

record(Bin) -> <<(byte_size(Bin)):32, Bin/binary>>.

records(<<Len:32, Bin:Len/binary, Rest/binary>>) -> [Bin | records(Rest)];
records(<<>>) -> [].

%% erl_prim_loader compiled again under another name with every function exported, for
%% name_split/2.
load_split() ->
    Src = filename:join([code:lib_dir(erts), "src", "erl_prim_loader.erl"]),
    case filelib:is_regular(Src) of
        true -> load_split(Src);
        false -> none
    end.

load_split(Src) ->
    Kernel = filename:join(code:lib_dir(kernel), "src"),
    {ok, Forms0} = epp:parse_file(Src, [{includes, [filename:dirname(Src), Kernel]}]),
    Forms = [case F of
                 {attribute, L, module, _} -> {attribute, L, module, oracle_prim_loader};
                 _ -> F
             end || F <- Forms0],
    {ok, Mod, Bin} = compile:forms(Forms, [export_all, nowarn_export_all, binary]),
    {module, Mod} = code:load_binary(Mod, "oracle_prim_loader.erl", Bin),
    Mod.

query(Mod, {Op, Path, Archive}) ->
    Split = case Mod of
                none -> unknown;
                _ -> try Mod:name_split(undefined, Path) catch C:_ -> {crash, C} end
            end,
    Self = self(),
    Pid = spawn(fun() ->
                        PS = erl_prim_loader:prim_init(),
                        First = run(PS, Op, Path),
                        Again = run(PS, Op, Path),
                        Self ! {self(), First, Again}
                end),
    receive {Pid, First, Again} -> ok end,
    Info = case Archive of
               false -> none;
               _ -> prim_file:read_file_info(Archive)
           end,
    {Split, First, Again, Info}.

run(PS, Op, Path) ->
    try
        {Res, _} = case Op of
                       get -> get_file(PS, Path);
                       list_dir -> erl_prim_loader:prim_list_dir(PS, Path);
                       read_file_info -> erl_prim_loader:prim_read_file_info(PS, Path, true);
                       read_link_info -> erl_prim_loader:prim_read_file_info(PS, Path, false)
                   end,
        Res
    catch
        C:_ -> {crash, C}
    end.

get_file(PS, Path) ->
    case erlang:function_exported(erl_prim_loader, prim_get_file, 2) of
        true -> erl_prim_loader:prim_get_file(PS, Path);
        false -> erl_prim_loader:prim_read_file(PS, Path)
    end.

%% --- fixtures --------------------------------------------------------------------------

write(Dir, Name, Data) ->
    F = filename:join(Dir, Name),
    ok = filelib:ensure_dir(F),
    ok = file:write_file(F, Data),
    ok = file:change_time(F, {{2024, 3, 5}, {10, 20, 33}}).

text(N) -> iolist_to_binary([io_lib:format("line ~b of a compressible text~n", [I])
                             || I <- lists:seq(1, N)]).

make(Dir) ->
    T = filename:join(Dir, "tree"),
    write(T, "a-1.0/ebin/a.beam", <<"FOR1", (text(200))/binary>>),
    write(T, "a-1.0/ebin/a.app", <<"{application,a,[]}.\n">>),
    write(T, "a-1.0/priv/x", <<"hello\n">>),
    write(T, "a-1.0/priv/sub/deep.txt", text(40)),
    write(T, "a-1.0/priv/empty", <<>>),
    write(T, "README", <<"top level file\n">>),
    write(T, "b-2.0/ebin/b.beam", <<"FOR1 b">>),
    write(T, "b-2.0/priv/deep/y.txt", text(3)),
    write(T, "c.txt", <<"c">>),
    write(T, "inner/inner.ez", <<"not looked into">>),
    Z = fun(Name, Files, Opts) ->
                {ok, _} = zip:create(filename:join(Dir, Name), Files, [{cwd, T} | Opts])
        end,
    Z("app_stored.ez", ["a-1.0", "README"], [{compress, []}]),
    Z("app_deflated.ez", ["a-1.0", "README"], [{compress, all}]),
    Z("flat.ez", ["b-2.0/ebin/b.beam", "b-2.0/priv/deep/y.txt", "c.txt",
                  "a-1.0/priv/sub/deep.txt"], []),
    Z("multi.ez", ["b-2.0", "a-1.0", "inner"], []),
    Z("empty.ez", [], []),
    {ok, _} = zip:create(filename:join(Dir, "mem.ez"),
                         [{"m-1/ebin/m.beam", <<"mem">>}, {"m-1/", <<>>}]),
    ok = file:write_file(filename:join(Dir, "tiny.ez"), <<"hello\n">>),
    ok = file:write_file(filename:join(Dir, "mid.ez"), binary:copy(<<"x">>, 30)),
    ok = file:write_file(filename:join(Dir, "junk.ez"), binary:copy(<<"junk">>, 12000)),
    ok = filelib:ensure_dir(filename:join([Dir, "dir.ez", "f"])),
    ok = file:write_file(filename:join([Dir, "dir.ez", "f"]), <<"in a directory">>),
    ok.
